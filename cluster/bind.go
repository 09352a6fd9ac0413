package cluster

import (
	"fmt"
	"net"
)

// bindIP resolves the host of --bind to the one address memberlist will
// listen on. memberlist takes only an IP: given a name ("localhost"), its
// net.ParseIP fails and it listens on every interface, so the loopback
// check, made on the name, let strangers on other addresses join. A name
// is resolved here (the first IPv4 address, else the first), and both
// the check and the bind use the address.
func bindIP(host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %q: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%q resolves to no address", host)
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip, nil
		}
	}
	return ips[0], nil
}
