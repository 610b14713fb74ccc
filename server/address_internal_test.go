package server

import "testing"

// TestAddressKey: IPv4 clients are limited per address, IPv6 ones per
// /64, so one host cannot rotate through its addresses for new budgets.
func TestAddressKey(t *testing.T) {
	for host, want := range map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"::ffff:192.0.2.7":          "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff::1": "2001:db8:1:2::/64",
		"fe80::1%eth0":              "fe80::/64",
		"not an address":            "not an address",
	} {
		if got := AddressKey(host); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", host, got, want)
		}
	}
}
