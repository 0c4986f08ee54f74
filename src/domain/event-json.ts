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
