import { describe, expect, it } from "vitest";
import { addressKey, clientAddress } from "../../src/limits/client-address";

describe("the address key limits count by", () => {
  it("is an IPv4 address itself", () => {
    expect(addressKey("198.51.100.7")).toBe("198.51.100.7");
  });

  it("is the /64 of an IPv6 address, however it is written", () => {
    const key = "2001:db8:1:2::/64";
    for (const address of [
      "2001:db8:1:2:3:4:5:6",
      "2001:0DB8:0001:0002:ffff:ffff:ffff:ffff",
      "2001:db8:1:2::",
      "2001:db8:1:2::9",
      "2001:db8:1:2:0:0:1.2.3.4",
    ]) {
      expect(addressKey(address), address).toBe(key);
    }
    expect(addressKey("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(addressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
  });

  it("is the IPv4 address of an IPv4-mapped IPv6 address", () => {
    expect(addressKey("::ffff:198.51.100.7")).toBe("198.51.100.7");
    expect(addressKey("::ffff:c633:6407")).toBe("198.51.100.7");
  });

  it("keeps what is not an address as it came, and calls a request without one local", () => {
    expect(addressKey("2001:db8:::1")).toBe("2001:db8:::1");
    expect(addressKey("1:2:3:4:5:6:7:8:9")).toBe("1:2:3:4:5:6:7:8:9");
    expect(clientAddress(new Request("http://relay.test/"))).toBe("local");
    expect(clientAddress(new Request("http://relay.test/", { headers: { "CF-Connecting-IP": "2001:db8:1:2::5" } }))).toBe("2001:db8:1:2::/64");
  });
});
