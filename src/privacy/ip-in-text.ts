import { isIP } from 'node:net';

/** What an IP address inside text becomes. */
export const IP_PLACEHOLDER = '[IP]';

/**
 * A dotted quad, each part 0–255, that is not part of a longer dotted number: the
 * parts of `1.2.3.4.5` or `10.0.19041.1` are not an address, `v1.2.3` has three parts.
 * Lookarounds, not a scan, keep it linear: each start is tried over at most 15 characters.
 */
const ipv4Pattern =
  /(?<!\d)(?<!\d\.)(?:25[0-5]|2[0-4]\d|[01]?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|[01]?\d?\d)){3}(?!\d|\.\d)/g;
const digitDotDigit = /\d\.\d/;
/**
 * `126.0.0.0` names a network, never a host: no client has it. It is what browsers now
 * send as their version (`Chrome/126.0.0.0`, `Edg/126.0.0.0`), and .NET assembly
 * versions look the same (`Version=4.0.0.0`), so it is kept.
 */
const networkAddress = /\.0{1,3}\.0{1,3}\.0{1,3}$/;

/**
 * A run of hex digits, dots and colons holding at least two colons: the candidates for
 * an IPv6 address, each checked by net.isIP once trimmed (see ipv6Span). The lookbehind
 * starts the pattern only at the start of a run, and neither part before a colon can
 * hold a colon, so each run costs one pass.
 */
const ipv6Candidate = /(?<![0-9A-Fa-f:.])[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*/g;
const zoneId = /%[0-9A-Za-z_.~-]+/y;
const anyDigit = /\d/;

/** Whether the text holds an IPv4 or IPv6 address anywhere. */
export function ipIn(text: string): boolean {
  return ipSpans(text).length > 0;
}

/**
 * The text with every IP address in it replaced by "[IP]", with its brackets and zone
 * id (`[fe80::1%eth0]:443` → `[IP]:443`); ports and the text around stay. The same
 * string is returned when there is none. Taking an address out can leave another one
 * whole (`203.0.113.9::ffff:1111`: the run is no address, but once the IPv4 part is
 * out, `::ffff:1111` is), so the replacement is repeated, a bounded number of times;
 * callers that need none left check with ipIn.
 */
export function replaceIps(text: string): string {
  let out = text;
  for (let pass = 0; pass < maxPasses; pass++) {
    const spans = ipSpans(out);
    if (spans.length === 0) break;
    let next = '';
    let at = 0;
    for (const [start, end] of spans) {
      next += `${out.slice(at, start)}${IP_PLACEHOLDER}`;
      at = end;
    }
    out = next + out.slice(at);
  }
  return out;
}

const maxPasses = 3;

type Span = [start: number, end: number];

/** The [start, end) of each address in the text, in order, never overlapping. */
function ipSpans(text: string): Span[] {
  const ipv6: Span[] = [];
  const firstColon = text.indexOf(':');
  if (firstColon !== -1 && text.indexOf(':', firstColon + 1) !== -1) {
    ipv6Candidate.lastIndex = 0;
    for (let match = ipv6Candidate.exec(text); match; match = ipv6Candidate.exec(text)) {
      const span = ipv6Span(text, match.index, match.index + match[0].length);
      if (span) ipv6.push(span);
    }
  }
  if (!digitDotDigit.test(text)) return ipv6;
  const spans = ipv6.slice();
  // An IPv4-mapped IPv6 address was taken whole already. Both lists are in order, so
  // one pointer walks the IPv6 spans once.
  let next = 0;
  ipv4Pattern.lastIndex = 0;
  for (let match = ipv4Pattern.exec(text); match; match = ipv4Pattern.exec(text)) {
    if (networkAddress.test(match[0])) continue;
    const start = match.index;
    const end = start + match[0].length;
    while (next < ipv6.length && (ipv6[next] as Span)[1] <= start) next++;
    if (next < ipv6.length && (ipv6[next] as Span)[0] < end) continue;
    spans.push([start, end]);
  }
  return ipv6.length > 0 ? spans.sort((a, b) => a[0] - b[0]) : spans;
}

/**
 * The address inside a candidate run [runStart, runEnd), or undefined. The run is
 * trimmed of what is text, not address: a word glued before it (`Forwarded:2001:db8::1`
 * gives the run `ded:2001:db8::1`; `std::` gives `d::`) loses its first part, a word
 * glued after it (`12:30:45am`) its last, and a sentence's closing dot or colon goes.
 * What is left must hold a digit (so that `a::b` or `Cafe::Bad` stay words) and pass
 * net.isIP as IPv6.
 */
function ipv6Span(text: string, runStart: number, runEnd: number): Span | undefined {
  let start = runStart;
  let end = runEnd;
  if (isWordChar(text.charCodeAt(start - 1))) start = text.indexOf(':', start) + 1;
  if (isWordChar(text.charCodeAt(end))) end = text.lastIndexOf(':', end - 1);
  while (start < end && text.charCodeAt(start) === 46) start++;
  while (end > start && text.charCodeAt(end - 1) === 46) end--;
  if (text.charCodeAt(start) === 58 && text.charCodeAt(start + 1) !== 58) start++;
  if (text.charCodeAt(end - 1) === 58 && text.charCodeAt(end - 2) !== 58) end--;
  if (end - start < 2) return undefined;
  const candidate = text.slice(start, end);
  if (!anyDigit.test(candidate) || isIP(candidate) !== 6) return undefined;
  if (end === runEnd && text.charCodeAt(end) === 37) {
    zoneId.lastIndex = end;
    if (zoneId.test(text)) end = zoneId.lastIndex;
  }
  if (text.charCodeAt(start - 1) === 91 && text.charCodeAt(end) === 93) return [start - 1, end + 1];
  return [start, end];
}

/** A letter, digit or underscore (NaN, past either end of the text, is not). */
function isWordChar(code: number): boolean {
  return (
    (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 95
  );
}
