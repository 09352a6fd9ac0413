package node

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// The status page and its status.json answer only requests that name
// this listener: its own address, localhost, the node's name and host
// name, or a name configured for it (--advertise). A page a browser
// loaded from elsewhere can make the browser ask any address; with DNS
// rebinding, its own name soon points at 127.0.0.1 and the same-origin
// rule lets it read what comes back. The Host header is what gives such
// a request away. /metrics is left to scrapers, which name their
// targets as they are configured to.

// allowedHosts is the set of names and addresses a request may give as
// its Host for a listener on addr. A listener on every interface (0.0.0.0,
// ::) is reached at any address of the machine.
func allowedHosts(addr net.Addr, names ...string) map[string]bool {
	ok := map[string]bool{"localhost": true}
	for _, n := range names {
		if n != "" {
			ok[canonHost(n)] = true
		}
	}
	if h, err := os.Hostname(); err == nil {
		ok[canonHost(h)] = true
	}
	tcp, _ := addr.(*net.TCPAddr)
	if tcp == nil {
		return ok
	}
	if !tcp.IP.IsUnspecified() {
		ok[tcp.IP.String()] = true
		return ok
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, isNet := a.(*net.IPNet); isNet {
				ok[ipn.IP.String()] = true
			}
		}
	}
	return ok
}

// canonHost is a Host header's (or name's) host part, lower case, without
// a port, brackets or a final dot.
func canonHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return strings.ToLower(h)
}

// hostGuard answers 403 to a request whose Host is not in allowed.
func hostGuard(allowed map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[canonHost(r.Host)] {
			http.Error(w, fmt.Sprintf("Host %q is not an address or name of this status page (a DNS rebinding?): use its address, localhost, or --advertise's name", r.Host), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// advertisedHost is the host part of --advertise ("" when not given).
func advertisedHost(advertise string) string {
	if host, _, err := net.SplitHostPort(advertise); err == nil {
		return host
	}
	return advertise
}
