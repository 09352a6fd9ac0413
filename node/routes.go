package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster"
	"github.com/clinit/clinit/daemon"
)

// clusterRoutes are the requests of the local protocol that the
// cluster answers: its view, its events, clinit --ha and the cluster
// commands. An edit of the hactl goes through ch, like every change of
// the cltab and the hactl.
func clusterRoutes(eng *daemon.Engine, cl *cluster.Cluster, ch *changes) map[string]daemon.Route {
	routes := map[string]daemon.Route{}
	routes[api.PathHastat] = daemon.Route{Method: http.MethodGet, Handler: func(w http.ResponseWriter, r *http.Request) {
		h, err := cl.Hastat(r.Context())
		if err != nil {
			daemon.WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		daemon.WriteJSON(w, http.StatusOK, h)
	}}
	routes[api.PathWatch] = daemon.Route{Method: http.MethodGet, Handler: func(w http.ResponseWriter, r *http.Request) {
		node := r.URL.Query().Get("node")
		if msg := daemon.BadNames("node", node); node != "" && msg != "" {
			daemon.WriteError(w, http.StatusBadRequest, msg, nil)
			return
		}
		events, err := cl.Watch(r.Context(), node)
		switch {
		case errors.Is(err, cluster.ErrNoNode):
			daemon.WriteError(w, http.StatusNotFound, err.Error(), nil)
			return
		case err != nil:
			daemon.WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		rc.SetWriteDeadline(time.Time{}) // a stream has no end in sight
		rc.Flush()
		enc := json.NewEncoder(w)
		for ev := range events {
			// An assignment is seen by this node; it is about the node
			// it names too.
			if node != "" && ev.Node != node && ev.Assigned != node {
				continue
			}
			if enc.Encode(ev) != nil || rc.Flush() != nil {
				return
			}
		}
	}}
	routes[api.PathHA] = daemon.Route{Method: http.MethodPost, Handler: func(w http.ResponseWriter, r *http.Request) {
		var req api.HARequest
		if err := daemon.Decode(r, &req); err != nil {
			daemon.WriteError(w, http.StatusBadRequest, err.Error(), nil)
			return
		}
		names := []string{"group", req.Group, "level", req.Level}
		for _, n := range req.Prefer {
			names = append(names, "node", n)
		}
		if msg := daemon.BadNames(names...); msg != "" {
			daemon.WriteError(w, http.StatusBadRequest, msg, nil)
			return
		}
		if !daemon.Fresh(w, r, eng, ch.Reread) {
			return
		}
		groups, err := eng.Groups(r.Context())
		if err != nil {
			daemon.WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if !slices.Contains(groups, req.Group) {
			daemon.WriteError(w, http.StatusNotFound, "no such group: "+req.Group, nil)
			return
		}
		// Refused, with nothing changed: what no node would honour.
		switch off, err := cl.HAOff(r.Context()); {
		case err != nil:
			daemon.WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		case off != "":
			daemon.WriteError(w, http.StatusConflict, fmt.Sprintf("%s, so no node would keep %s at %s; nothing changed (tell it here with clinit %s %s)",
				off, req.Group, req.Level, req.Group, req.Level), nil)
			return
		}
		t, err := eng.Tab(r.Context())
		if err != nil {
			daemon.WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if msg := cltab.HALevelProblem(t, req.Group, req.Level); msg != "" {
			daemon.WriteError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s: the cluster would keep %s running nothing; nothing changed (its levels: %s; stop runs it nowhere)",
				msg, req.Group, strings.Join(cltab.GroupLevels(t, req.Group), ", ")), nil)
			return
		}
		var warnings []string
		if len(req.Prefer) > 0 {
			unknown, members, err := cl.UnknownNodes(r.Context(), req.Prefer)
			if err != nil {
				daemon.WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
				return
			}
			for _, n := range unknown {
				warnings = append(warnings, fmt.Sprintf("preferred node %s is not in this cluster (members: %s): it ranks first only once it joins", n, strings.Join(members, ", ")))
			}
		}
		v, err := ch.EditHactl(r.Context(), req.Group, req.Level, req.Prefer)
		var invalid cltab.Errors
		switch {
		case errors.As(err, &invalid):
			daemon.WriteError(w, http.StatusUnprocessableEntity, "the hactl would be invalid, nothing changed", invalid.Lines())
		case errors.Is(err, cluster.ErrRefused):
			daemon.WriteError(w, http.StatusConflict, err.Error(), nil)
		case err != nil:
			daemon.WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
		default:
			daemon.WriteJSON(w, http.StatusOK, api.Message{Message: fmt.Sprintf("%s: HA level %s, committed as hactl version %d", req.Group, req.Level, v), Warnings: warnings})
		}
	}}
	routes[api.PathCluster] = daemon.Route{Method: http.MethodPost, Handler: func(w http.ResponseWriter, r *http.Request) {
		var req api.ClusterRequest
		if err := daemon.Decode(r, &req); err != nil {
			daemon.WriteError(w, http.StatusBadRequest, err.Error(), nil)
			return
		}
		var names []string
		if req.Group != "" {
			names = append(names, "group", req.Group)
		}
		if req.Node != "" {
			names = append(names, "node", req.Node)
		}
		if msg := daemon.BadNames(names...); msg != "" {
			daemon.WriteError(w, http.StatusBadRequest, msg, nil)
			return
		}
		msg, err := cl.Command(r.Context(), req)
		switch {
		case errors.Is(err, cluster.ErrRefused):
			daemon.WriteError(w, http.StatusConflict, err.Error(), nil)
		case err != nil:
			daemon.WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
		default:
			daemon.WriteJSON(w, http.StatusOK, api.Message{Message: msg})
		}
	}}
	return routes
}
