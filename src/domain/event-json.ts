import type { ActivityEvent } from './event.js';

/** Each event's JSON text, kept while the event is: a live stream sends one event to many clients. */
const texts = new WeakMap<ActivityEvent, string>();

/** `JSON.stringify(event)`, computed once per event object however many streams send it. */
export function eventJson(event: ActivityEvent): string {
  let text = texts.get(event);
  if (text === undefined) {
    text = JSON.stringify(event);
    texts.set(event, text);
  }
  return text;
}

/** Metadata's JSON text, by the object, where whoever made the object wrote it already. */
const metadataTexts = new WeakMap<object, string>();

/** Keeps `json`, the JSON text of `metadata`, for metadataJson: the caller vouches that it is. */
export function keepMetadataJson(metadata: object, json: string): void {
  metadataTexts.set(metadata, json);
}

/** `JSON.stringify(metadata)`, written once per metadata object. */
export function metadataJson(metadata: object): string {
  return metadataTexts.get(metadata) ?? JSON.stringify(metadata);
}
