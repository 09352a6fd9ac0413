// Package wire holds the constants of the local socket protocol that the
// fast tell (package client/fast) needs as well as package api: it imports
// nothing, so that the fast tell can use them before the packages api
// depends on are initialised. Package api re-exports every one of them.
package wire

// VersionHeader is sent both ways; Version is the protocol version.
const (
	VersionHeader = "Clinit-Version"
	Version       = "0"
)

// Paths of the protocol, all under /v0/.
const (
	PathTell     = "/v0/tell"     // POST TellRequest -> Message
	PathReread   = "/v0/reread"   // POST -> Message
	PathStatus   = "/v0/status"   // GET -> Status
	PathShutdown = "/v0/shutdown" // POST -> Message, answered once every group has stopped
	PathHastat   = "/v0/hastat"   // GET -> Hastat
	PathHA       = "/v0/ha"       // POST HARequest -> Message
	PathWatch    = "/v0/watch"    // GET [?node=NAME] -> a stream of Event, one JSON object a line
	PathCluster  = "/v0/cluster"  // POST ClusterRequest -> Message
)

// MaxName is the longest group, tag, level or node name, in bytes, in
// a cltab and on the socket alike (cltab.CheckName has the whole rule).
const MaxName = 128
