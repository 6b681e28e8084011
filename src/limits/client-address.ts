/**
 * The key a client's limits are counted under, from the address Cloudflare reports
 * (`CF-Connecting-IP`): an IPv4 address itself, an IPv6 address's /64 (one subscriber's network:
 * a single host can take any address in it), `local` without one (local development). The
 * connection limit and the publish rate key both count by it.
 *
 * @example clientAddress(new Request(url, { headers: { "CF-Connecting-IP": "2001:db8:1:2:3:4:5:6" } })) // "2001:db8:1:2::/64"
 */
export function clientAddress(request: Request): string {
  const address = request.headers.get("CF-Connecting-IP");
  return address === null ? "local" : addressKey(address);
}

/** An IPv4 address as is (also when written IPv4-mapped, `::ffff:192.0.2.1`), an IPv6 address as its /64. */
export function addressKey(address: string): string {
  const text = address.trim().toLowerCase();
  if (!text.includes(":")) return text;
  const groups = ipv6Groups(text);
  if (!groups) return text;
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a trailing dotted IPv4 read), or undefined if it is not one. */
function ipv6Groups(text: string): number[] | undefined {
  const withoutZone = text.split("%")[0]!;
  const halves = withoutZone.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === "") return [];
    const groups: number[] = [];
    const pieces = part.split(":");
    for (const [index, piece] of pieces.entries()) {
      if (index === pieces.length - 1 && piece.includes(".")) {
        const octets = piece.split(".").map(Number);
        if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) return undefined;
        groups.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
      } else if (/^[0-9a-f]{1,4}$/.test(piece)) groups.push(Number.parseInt(piece, 16));
      else return undefined;
    }
    return groups;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  return [...head, ...Array<number>(missing).fill(0), ...tail];
}
