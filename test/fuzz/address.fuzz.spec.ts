import fc from 'fast-check';
import { isIP } from 'node:net';
import { describe, expect } from 'vitest';
import { formatAddress, InvalidAddressError, parseAddress, type HostPort } from '../../lib/core/index.js';
import { reliabilityTest, ResultsFile, type ResultSpec } from '../faults/support/reliability-results.js';
import { fuzzParameters } from './support/fuzz-settings.js';

const results = new ResultsFile('fuzz-address');
const spec = (scenario: string, title: string, asserted: string): ResultSpec => ({
  suite: 'fuzz',
  scenario,
  title,
  backend: 'any',
  asserted,
});

/** parseAddress, with anything but InvalidAddressError turned into a test failure. */
function parse(value: unknown): HostPort | InvalidAddressError {
  try {
    return parseAddress(value, 'fuzz.address');
  } catch (error) {
    if (error instanceof InvalidAddressError) return error;
    throw new Error(
      `parseAddress(${JSON.stringify(value)}) threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`,
      { cause: error },
    );
  }
}

/** What an accepted address always is: a host (no scheme, path or credentials) and a port in range. */
function checkAccepted(input: string, parsed: HostPort): void {
  expect(Number.isInteger(parsed.port) && parsed.port >= 1 && parsed.port <= 65535).toBe(true);
  expect(parsed.host.length).toBeGreaterThan(0);
  expect(parsed.host).not.toMatch(/[/\\@\s?#[\]]/);
  // ':' and a zone ('%eth0') only inside an IPv6 address.
  if (parsed.host.includes(':') || parsed.host.includes('%')) expect(isIP(parsed.host)).toBe(6);
  // Formatting and parsing again gives the same host and port (the canonical form is a fixed point).
  const formatted = formatAddress(parsed.host, parsed.port);
  expect(parseAddress(formatted)).toEqual(parsed);
  expect(formatAddress(parseAddress(formatted).host, parsed.port)).toBe(formatted);
  // Only leading zeros of the port may differ from the canonical form.
  expect(input.replace(/:0+(?=\d+$)/, ':')).toBe(formatted);
}

const label = fc.stringMatching(/^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,10})$/);
const hostname = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.'));
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const ipv6 = fc.ipV6();
const port = fc.integer({ min: 1, max: 65535 });
const validAddress = fc.oneof(
  fc.tuple(hostname, port).map(([h, p]) => `${h}:${p}`),
  fc.tuple(ipv4, port).map(([h, p]) => `${h}:${p}`),
  fc.tuple(ipv6, port).map(([h, p]) => `[${h}]:${p}`),
);

describe('fuzz: address parsing', () => {
  reliabilityTest(
    results,
    spec(
      'address-any-string',
      'address parsing: arbitrary strings',
      'any string (or non-string) gives a host:port with a port in 1..65535, or an InvalidAddressError naming the field and value',
    ),
    (details) => {
      let accepted = 0;
      let runs = 0;
      const text = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.string({ unit: 'binary', maxLength: 40 }),
        // Near misses: real-looking addresses with one edit.
        fc
          .tuple(
            validAddress,
            fc.nat(),
            fc.constantFrom('', ':', '[', ']', '/', '@', ' ', '0', '99999', '%25eth0', '.', '-', 'unix:', 'http://'),
          )
          .map(
            ([address, at, insert]) =>
              address.slice(0, at % (address.length + 1)) + insert + address.slice(at % (address.length + 1)),
          ),
      );
      fc.assert(
        fc.property(fc.oneof({ weight: 6, arbitrary: text }, { weight: 1, arbitrary: fc.anything() }), (value) => {
          runs++;
          const outcome = parse(value);
          if (outcome instanceof InvalidAddressError) {
            expect(outcome.field).toBe('fuzz.address');
            expect(outcome.message).toMatch(/^Invalid fuzz\.address .*: expected "host:port"/);
            return;
          }
          accepted++;
          expect(typeof value).toBe('string');
          checkAccepted(value as string, outcome);
        }),
        fuzzParameters(0xadd1, 2_000),
      );
      details.runs = runs;
      details.accepted = accepted;
      expect(accepted).toBeGreaterThan(0);
    },
  );

  reliabilityTest(
    results,
    spec(
      'address-round-trip',
      'address parsing: valid host:port round-trips',
      'every generated host:port (names, IPv4, bracketed IPv6) parses, and formatAddress gives the canonical text back',
    ),
    () => {
      fc.assert(
        fc.property(validAddress, (address) => {
          const parsed = parse(address);
          expect(parsed).not.toBeInstanceOf(InvalidAddressError);
          checkAccepted(address, parsed as HostPort);
        }),
        fuzzParameters(0xadd2, 1_000),
      );
    },
  );

  reliabilityTest(
    results,
    spec(
      'address-other-schemes',
      'address parsing: URLs and other schemes',
      'URLs (scheme://...), unix: paths, user@host and addresses without a port are refused',
    ),
    () => {
      const scheme = fc.constantFrom(
        'http',
        'https',
        'unix',
        'unix-abstract',
        'dns',
        'ipv4',
        'ipv6',
        'xds',
        'discovery',
        'vsock',
        'file',
      );
      fc.assert(
        fc.property(
          scheme,
          validAddress,
          fc.constantFrom('://', ':/', ':///', '://user:pw@'),
          (s, address, separator) => {
            expect(parse(`${s}${separator}${address}`)).toBeInstanceOf(InvalidAddressError);
          },
        ),
        fuzzParameters(0xadd3, 400),
      );
      fc.assert(
        fc.property(fc.oneof(hostname, ipv4), (host) => {
          expect(parse(host)).toBeInstanceOf(InvalidAddressError);
          expect(parse(`user@${host}:80`)).toBeInstanceOf(InvalidAddressError);
          expect(parse(`unix:/run/${host}.sock`)).toBeInstanceOf(InvalidAddressError);
        }),
        fuzzParameters(0xadd4, 300),
      );
    },
  );
});
