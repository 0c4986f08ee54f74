/** Thirteen digits in one run (digits with single separators between them), checked first. */
const thirteenDigits = /\d(?:[ .-]?\d){12}/;

const minCardDigits = 13;
const maxCardDigits = 19;

/**
 * Whether the text holds a card number: whole groups of a digit run (digit groups with
 * one space, dash or dot between them) that total 13–19 digits and pass the Luhn check.
 * In "order 2024 4111 1111 1111 1111" the last four groups are a card number; windows
 * never split a group, so an ordinary long number is not taken for one. A window of
 * two groups or more takes only groups of 3–6 digits, as printed card numbers have, so
 * that neither a decimal such as 3.14159265358979 nor the digits of a UUID
 * (`…-8337-823580406744`) are taken for one.
 *
 * With `grouped`, a card number must span two groups or more: one run of digits alone
 * does not count.
 *
 * Linear by construction: one pass over the text builds prefix sums of the Luhn
 * weights, and each group starts at most seven windows (13 to 19 digits), each
 * checked in constant time.
 */
export function containsCardNumber(text: string, options: { grouped?: boolean } = {}): boolean {
  if (!thirteenDigits.test(text)) return false;
  const size = text.length + 1;
  const { sums, bounds, misfits, values } = scratchFor(size);
  sums[0] = 0;
  sums[size] = 0;
  misfits[0] = 0;
  let digits = 0;
  let i = 0;
  while (i < text.length) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const runStart = digits;
    // A run that starts or ends inside a word (`c0d9-4059-…-068501b2`, a UUID) is
    // not a printed card number: its first or last group cannot be part of one.
    const wordBefore = i > 0 && isLetter(text.charCodeAt(i - 1));
    let groups = 0;
    bounds[0] = digits;
    for (;;) {
      for (; i < text.length && isDigit(text.charCodeAt(i)); i++, digits++) {
        const digit = text.charCodeAt(i) - 48;
        const doubled = digit > 4 ? digit * 2 - 9 : digit * 2;
        values[digits] = digit;
        sums[digits + 1] = (sums[digits] as number) + (digits % 2 === 0 ? doubled : digit);
        sums[size + digits + 1] = (sums[size + digits] as number) + (digits % 2 === 0 ? digit : doubled);
      }
      const groupSize = digits - (bounds[groups] as number);
      const separator = text.charCodeAt(i);
      const joined =
        (separator === 32 || separator === 45 || separator === 46) && isDigit(text.charCodeAt(i + 1));
      const misfit =
        groupSize < 3 || groupSize > 6 || (groups === 0 && wordBefore) || (!joined && isLetter(separator));
      misfits[groups + 1] = (misfits[groups] as number) + (misfit ? 1 : 0);
      groups++;
      bounds[groups] = digits;
      if (!joined) break;
      i++;
    }
    if (
      digits - runStart >= minCardDigits &&
      runHoldsCard(groups, bounds, misfits, values, sums, size, options.grouped === true)
    ) {
      return true;
    }
  }
  return false;
}

/**
 * Over the digits of the text, in order: sums[k] and sums[size + k] are the sums of
 * digits 0..k-1 with those at even (first half) or odd (second half) indexes doubled;
 * in a window of digits [start, end), Luhn doubles the digits whose index has the
 * parity of `end`, so each window's sum is one subtraction. Per group of the current
 * run: where it starts (in digits), how many groups before it have a size that no
 * printed card uses. Kept between calls
 * (the scan is synchronous), since allocating them cost more than a short scan.
 */
interface Scratch {
  sums: Int32Array;
  bounds: Int32Array;
  misfits: Int32Array;
  /** Each digit of the text, in order. */
  values: Uint8Array;
}
const keptScratchSize = 16 * 1024;
const kept: Scratch = createScratch(keptScratchSize);

function createScratch(size: number): Scratch {
  return {
    sums: new Int32Array(2 * size),
    values: new Uint8Array(size),
    bounds: new Int32Array(size),
    misfits: new Int32Array(size),
  };
}

/** The kept buffers, or for a text longer than any metadata string, new ones. */
function scratchFor(size: number): Scratch {
  return size <= keptScratchSize ? kept : createScratch(size);
}

/**
 * Whether `length` digits from `start` begin as a card network issues them, at one of
 * its lengths (Visa, Mastercard, Amex, Discover, UnionPay, JCB, Diners, Maestro). Luhn
 * alone passes one number in ten: a millisecond timestamp (13 digits from 1) is never
 * a card, and neither is most of what ids and counters hold.
 */
function issuedAs(values: Uint8Array, start: number, length: number): boolean {
  const digit = (at: number) => values[start + at] as number;
  const two = digit(0) * 10 + digit(1);
  const three = two * 10 + digit(2);
  const four = three * 10 + digit(3);
  if (digit(0) === 4) return length === 13 || length === 16 || length === 19;
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return length === 16;
  if (two === 34 || two === 37) return length === 15;
  if (four === 6011 || two === 65 || (three >= 644 && three <= 649) || two === 62) return length >= 16;
  if (four >= 3528 && four <= 3589) return length >= 16;
  if ((three >= 300 && three <= 305) || two === 36 || two === 38 || two === 39) return length >= 14;
  return two === 50 || (two >= 56 && two <= 69);
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/**
 * Tries each window of whole groups of 13–19 digits. The first group ending at 13 or
 * more digits only moves right as the window's first group does, so the windows tried
 * number at most seven per group.
 */
function runHoldsCard(
  groups: number,
  bounds: Int32Array,
  misfits: Int32Array,
  values: Uint8Array,
  sums: Int32Array,
  size: number,
  grouped: boolean,
): boolean {
  let last = 0;
  for (let first = 0; first < groups; first++) {
    const start = bounds[first] as number;
    if (last < first) last = first;
    while (last < groups && (bounds[last + 1] as number) - start < minCardDigits) last++;
    for (let group = grouped ? Math.max(last, first + 1) : last; group < groups; group++) {
      const end = bounds[group + 1] as number;
      if (end - start > maxCardDigits) break;
      // Across groups, each must have a size that printed cards use: a UUID's
      // `8337-823580406744` is not a card number, though one in ten would pass Luhn.
      if (group > first && (misfits[group + 1] as number) > (misfits[first] as number)) continue;
      const offset = end % 2 === 0 ? 0 : size;
      if (
        ((sums[offset + end] as number) - (sums[offset + start] as number)) % 10 === 0 &&
        issuedAs(values, start, end - start)
      ) {
        return true;
      }
    }
  }
  return false;
}
