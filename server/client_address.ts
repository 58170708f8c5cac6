/**
 * Who the client is, behind trusted proxies (`TRUSTED_PROXIES`).
 *
 * The TCP peer is the client unless the peer is a trusted proxy. Then the
 * `X-Forwarded-For` list is walked from the right (the entries the trusted
 * proxies appended) and the first address that is not itself a trusted proxy
 * is the client: the algorithm of nginx's `real_ip_recursive on` and
 * Express's `trust proxy`. Entries left of it were written by the client or
 * by proxies nobody vouches for, and are never read, so a client cannot pick
 * its own address. When every entry is trusted, the leftmost is the client;
 * an entry that is not an address (`unknown`, garbage) ends the walk at the
 * hop that forwarded it. A peer that is not trusted is the client whatever
 * headers it sends.
 *
 * Addresses and ranges are parsed and matched by ipaddr.js. IPv4-mapped IPv6
 * addresses (`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 peers)
 * are the IPv4 address they carry, both in `TRUSTED_PROXIES` and on the wire.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [Address, number];

/**
 * One `TRUSTED_PROXIES` entry (an address or a CIDR range) as its canonical
 * CIDR string, `192.0.2.7/32`, `10.0.0.0/8`, `2001:db8::/32`; IPv4-mapped IPv6
 * ranges become IPv4 ones. Undefined when `entry` is neither.
 */
export function canonicalRange(entry: string): string | undefined {
  const range = parseRange(entry.trim());
  if (!range) return undefined;
  const [address, bits] = range;
  const network = address.kind() === "ipv4"
    ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${bits}`)
    : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${bits}`);
  return `${network}/${bits}`;
}

function parseRange(text: string): Range | undefined {
  let range: Range;
  if (ipaddr.IPv4.isValidCIDRFourPartDecimal(text) || ipaddr.IPv6.isValidCIDR(text)) {
    range = ipaddr.parseCIDR(text);
  } else {
    const address = parseAddress(text);
    if (!address) return undefined;
    return [address, address.kind() === "ipv4" ? 32 : 128];
  }
  const [address, bits] = range;
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    if (bits < 96) return undefined; // wider than the mapped block: not an IPv4 range
    return [(address as ipaddr.IPv6).toIPv4Address(), bits - 96];
  }
  return range;
}

/**
 * `text` as an address, IPv4-mapped IPv6 as IPv4; undefined when it is not a
 * plain address (IPv4 must be four decimal parts: `10.1` and `0x0a.0.0.1` are
 * not addresses here, as they are not to proxies).
 */
export function parseAddress(text: string): Address | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (!text.includes(":") || !ipaddr.IPv6.isValid(text)) return undefined;
  const address = ipaddr.IPv6.parse(text);
  return address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
}

/**
 * An `X-Forwarded-For` entry as an address: also `192.0.2.1:5678` and
 * `[2001:db8::1]:5678`, which some load balancers write.
 */
function forwardedAddress(entry: string): Address | undefined {
  const bracketed = entry.match(/^\[([^\]]+)\](?::\d{1,5})?$/);
  if (bracketed) return parseAddress(bracketed[1]);
  const withPort = entry.match(/^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/);
  return parseAddress(withPort ? withPort[1] : entry);
}

/** The `TRUSTED_PROXIES` ranges, and the client address they imply for a request. */
export class TrustedProxies {
  readonly #ranges: Range[];

  /** `ranges`: canonical entries as {@linkcode canonicalRange} returns them. */
  constructor(ranges: readonly string[]) {
    this.#ranges = ranges.map((r) => {
      const range = parseRange(r);
      if (!range) throw new TypeError(`not a range: ${r}`);
      return range;
    });
  }

  /** Whether `address` is in one of the ranges. */
  trusts(address: Address): boolean {
    return this.#ranges.some(([net, bits]) =>
      net.kind() === address.kind() && address.match(net, bits)
    );
  }

  /**
   * The client's address for a request from `peer` (the TCP peer) with the
   * `X-Forwarded-For` value `forwardedFor` (several headers joined by
   * commas, as `Headers.get` joins them). Undefined when the peer is unknown
   * (an in-process call); the peer as given when it is not an address.
   */
  clientOf(peer: string | undefined, forwardedFor: string | null): string | undefined {
    if (peer === undefined) return undefined;
    let client = parseAddress(peer);
    if (!client) return peer;
    if (!forwardedFor || !this.trusts(client)) return client.toString();
    const hops = forwardedFor.split(",").map((s) => s.trim()).filter(Boolean);
    for (let i = hops.length - 1; i >= 0 && this.trusts(client); i--) {
      const hop = forwardedAddress(hops[i]);
      if (!hop) break;
      client = hop;
    }
    return client.toString();
  }
}

/**
 * The key a client's budget is counted under: an IPv4 address as it is, an
 * IPv6 address by its /64 (one subscriber's usual allocation: counted per
 * address, a client with a /64 would have 2^64 budgets). Anything else as
 * given.
 */
export function budgetKey(clientAddress: string): string {
  const address = parseAddress(clientAddress);
  if (!address) return clientAddress;
  if (address.kind() === "ipv4") return address.toString();
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${address}/64`)}/64`;
}
