package cluster

import (
	"fmt"
	"log"
	"net"
	"strconv"

	"github.com/hashicorp/memberlist"
)

// transport is the configured transport, or the network transport
// memberlist would make of mc, bound now: raft needs its address first.
func (c *Cluster) transport(mc *memberlist.Config) (memberlist.Transport, error) {
	if mc.Transport != nil {
		return mc.Transport, nil
	}
	nc := &memberlist.NetTransportConfig{
		BindAddrs: []string{mc.BindAddr},
		BindPort:  mc.BindPort,
		Logger:    log.New(mc.LogOutput, "", 0),
	}
	// A dynamic port (0) is bound for UDP and TCP separately, which can
	// collide: memberlist retries, and so does this.
	tries := 1
	if mc.BindPort == 0 {
		tries = 10
	}
	var nt *memberlist.NetTransport
	var err error
	for range tries {
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("binding %s: %w", net.JoinHostPort(mc.BindAddr, strconv.Itoa(mc.BindPort)), err)
	}
	if mc.BindPort == 0 {
		mc.BindPort = nt.GetAutoBindPort()
		if mc.AdvertisePort == 0 {
			mc.AdvertisePort = mc.BindPort
		}
	}
	return nt, nil
}
