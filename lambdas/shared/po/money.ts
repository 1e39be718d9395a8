/**
 * Exact money arithmetic. Amounts are integer minor units (cents); decimal text is parsed digit
 * by digit and products are computed with BigInt, so `0.1 + 0.2` and `3 × 19.99` come out exact.
 */

const DECIMAL = /^([+-]?)(\d+)(?:\.(\d+))?$/;

/**
 * Digits after the decimal point for an ISO 4217 currency (USD 2, JPY 0, BHD 3), from the
 * runtime's CLDR data so we carry no table of our own.
 */
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    throw new RangeError(`unknown currency code "${currency}"`);
  }
}

/**
 * Writes a number as plain decimal text. JS prints the shortest text that round-trips, so a value
 * read from JSON or YAML as `19.99` comes back as "19.99"; exponent forms are refused rather than
 * guessed at.
 */
export function numberToDecimalText(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`${value} is not a finite amount`);
  const text = String(value);
  if (/e/i.test(text)) throw new RangeError(`${text} is not a plain decimal amount; write it without an exponent`);
  return text;
}

/**
 * Decimal text (or a number from a parsed JSON/YAML document) in major units → integer minor units.
 * Rejects more significant decimals than the currency has ("1.005" USD); trailing zeros beyond the
 * currency's precision ("12.500" USD) are exact and accepted.
 */
export function toMinor(value: string | number, currency: string): number {
  const text = typeof value === "number" ? numberToDecimalText(value) : value.trim();
  const m = DECIMAL.exec(text);
  if (!m) throw new RangeError(`"${text}" is not a decimal amount`);
  const [, sign = "", whole = "0", fraction = ""] = m;
  const digits = currencyDigits(currency);
  const significant = fraction.replace(/0+$/, "");
  if (significant.length > digits) {
    throw new RangeError(
      `${text} has ${significant.length} decimal places; ${currency} allows ${digits === 0 ? "none" : digits}`,
    );
  }
  const minor = BigInt(whole + significant.padEnd(digits, "0")) * (sign === "-" ? -1n : 1n);
  return toSafeNumber(minor, text);
}

/**
 * Quantity (decimal text, e.g. "2.5") × unit price in minor units, rounded half away from zero
 * to whole minor units: the usual commercial "round half up", symmetric for credit lines.
 */
export function multiplyQuantity(quantity: string, unitPriceMinor: number): number {
  if (!Number.isSafeInteger(unitPriceMinor)) throw new RangeError(`${unitPriceMinor} is not an integer minor amount`);
  const m = DECIMAL.exec(quantity.trim());
  if (!m || m[1] === "-") throw new RangeError(`"${quantity}" is not a non-negative decimal quantity`);
  const [, , whole = "0", fraction = ""] = m;
  const scale = 10n ** BigInt(fraction.length);
  const product = BigInt(whole + fraction) * BigInt(unitPriceMinor);
  const magnitude = product < 0n ? -product : product;
  const rounded = (magnitude * 2n + scale) / (scale * 2n);
  return toSafeNumber(product < 0n ? -rounded : rounded, `${quantity} × ${unitPriceMinor}`);
}

/** Integer minor units → exact decimal text in major units: (123450, "USD") → "1234.50". */
export function minorToDecimalText(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`${minor} is not an integer minor amount`);
  const digits = currencyDigits(currency);
  const negative = minor < 0;
  const abs = String(Math.abs(minor)).padStart(digits + 1, "0");
  const whole = abs.slice(0, abs.length - digits);
  const fraction = abs.slice(abs.length - digits);
  return `${negative ? "-" : ""}${whole}${digits > 0 ? `.${fraction}` : ""}`;
}

/** For people: (123450, "USD") → "$1,234.50". Formats the exact decimal text, never a float. */
export function formatMinor(minor: number, currency: string): string {
  const text = minorToDecimalText(minor, currency) as `${number}`;
  return new Intl.NumberFormat("en-US", { style: "currency", currency }).format(text);
}

function toSafeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RangeError(`${what} is too large to handle exactly`);
  }
  return Number(value);
}
