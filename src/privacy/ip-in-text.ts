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
const urlEscape = /%[0-9A-Fa-f]{2}/g;
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
  // A URL's escapes are blanked (same length, so the spans hold): in `%20203.0.113.7`
  // the address starts after an escape that ends in a digit.
  const scanned = text.includes('%') ? text.replace(urlEscape, '   ') : text;
  // An IPv4-mapped IPv6 address was taken whole already. Both lists are in order, so
  // one pointer walks the IPv6 spans once.
  let next = 0;
  ipv4Pattern.lastIndex = 0;
  for (let match = ipv4Pattern.exec(scanned); match; match = ipv4Pattern.exec(scanned)) {
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
 * trimmed of a sentence's closing dot or colon, then tried whole and without its last
 * group, its first group, or both: a port after it (`2001:db8::1:54321`, a ninth
 * group), a word glued before it (`Forwarded:2001:db8::1` gives the run
 * `ded:2001:db8::1`), or a word glued after it (`12:30:45am`). What
 * is tried must hold a digit (so that `a::b` or `Cafe::Bad` stay words) and pass
 * net.isIP as IPv6.
 */
function ipv6Span(text: string, runStart: number, runEnd: number): Span | undefined {
  let start = runStart;
  let end = runEnd;
  while (start < end && text.charCodeAt(start) === 46) start++;
  while (end > start && text.charCodeAt(end - 1) === 46) end--;
  if (text.charCodeAt(start) === 58 && text.charCodeAt(start + 1) !== 58) start++;
  if (text.charCodeAt(end - 1) === 58 && text.charCodeAt(end - 2) !== 58) end--;
  const afterFirst = text.indexOf(':', start) + 1;
  const beforeLast = text.lastIndexOf(':', end - 1);
  // A port after an address is more common than a hex word glued before one.
  const tries: Span[] = [
    [start, end],
    [start, beforeLast],
    [afterFirst, end],
    [afterFirst, beforeLast],
  ];
  for (const [from, to] of tries) {
    if (to - from < 2) continue;
    const candidate = text.slice(from, to);
    if (anyDigit.test(candidate) && isIP(candidate) === 6) return withBrackets(text, from, to, runEnd);
  }
  return undefined;
}

/** The address's span, with its zone id (`%eth0`) and the brackets around it, if any. */
function withBrackets(text: string, start: number, end: number, runEnd: number): Span {
  let last = end;
  if (last === runEnd && text.charCodeAt(last) === 37) {
    zoneId.lastIndex = last;
    if (zoneId.test(text)) last = zoneId.lastIndex;
  }
  if (text.charCodeAt(start - 1) === 91 && text.charCodeAt(last) === 93) return [start - 1, last + 1];
  return [start, last];
}
