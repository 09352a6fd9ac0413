package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
	"github.com/clinit/clinit/cluster"
)

// startCluster joins the cluster (or runs the one-node view) with the
// cltab and hactl replicated. reread is called when a new cltab version
// made elsewhere has been written here.
func startCluster(cfg Config, eng *Engine, reread func(why string), tell func(ctx context.Context, g, l string) error) (*cluster.Cluster, error) {
	cc := cfg.Cluster
	cc.Tab = cfg.Tab
	cc.Tell = tell
	cc.Run = eng.RunCommand
	cc.Node = cfg.Node
	cc.StateDir = cfg.StateDir
	if cfg.StateDir != "" {
		cc.Keeper = newKeeperLink(cfg.StateDir, cfg.Node, cfg.Log)
	}
	cc.Hastat = cfg.Hastat
	cc.Log = cfg.Log
	cc.Files = []cluster.File{
		{Kind: cluster.KindCltab, Path: cfg.CltabPath, Validate: func(p string, d []byte) error { _, err := cltab.Parse(p, d); return err }},
		{Kind: cluster.KindHactl, Path: cfg.Hactl, Validate: func(p string, d []byte) error { _, err := cltab.ParseHactl(p, d); return err }},
	}
	cc.OnFile = func(kind string) {
		if kind == cluster.KindCltab {
			reread("new version from the cluster")
		}
	}
	return cluster.Start(cc)
}

// watchReplicated watches the hactl and reports local edits to the
// cluster, which versions and replicates them.
func watchHactl(cl *cluster.Cluster, path string, log *zap.Logger, stop <-chan struct{}) {
	err := watchFile(path, log, stop, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := cl.FileChanged(ctx, cluster.KindHactl)
		var invalid cltab.Errors
		switch {
		case errors.As(err, &invalid):
			log.Error("hactl invalid: not replicated, keeping the last good one", zap.Strings("errors", invalid.Lines()))
		case err != nil:
			log.Error("hactl change", zap.Error(err))
		}
	})
	if err != nil {
		log.Warn("cannot watch the hactl; edit it with clinit --ha", zap.Error(err))
	}
}

// serveCluster adds the cluster's requests to the server.
func (s *Server) serveCluster(cl *cluster.Cluster) {
	// A tell after an edit rereads as the watcher would: versioned (and
	// replicated) first, when valid, then reread, then the cluster is
	// given the new cltab.
	s.refresh = func(ctx context.Context) error {
		if err := cl.FileChanged(ctx, cluster.KindCltab); err != nil && !errors.Is(err, cltab.ErrInvalid) {
			s.log.Error("cltab change", zap.Error(err))
		}
		if _, err := s.eng.Reread(ctx); err != nil {
			return err
		}
		t, err := s.eng.Tab(ctx)
		if err == nil {
			err = cl.SetTab(ctx, t)
		}
		return err
	}
	// An explicit reread also versions (and replicates) a valid local
	// edit, as the file watcher does: the watcher may not see the file
	// (a symlinked cltab).
	reread := s.routes[api.PathReread]
	s.routes[api.PathReread] = route{reread.method, func(w http.ResponseWriter, r *http.Request) {
		if err := cl.FileChanged(r.Context(), cluster.KindCltab); err != nil && !errors.Is(err, cltab.ErrInvalid) {
			s.log.Error("cltab change", zap.Error(err))
		}
		reread.h(w, r)
	}}
	s.routes[api.PathHastat] = route{http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		h, err := cl.Hastat(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		writeJSON(w, http.StatusOK, h)
	}}
	s.routes[api.PathWatch] = route{http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		node := r.URL.Query().Get("node")
		if msg := badNames("node", node); node != "" && msg != "" {
			writeError(w, http.StatusBadRequest, msg, nil)
			return
		}
		events, err := cl.Watch(r.Context(), node)
		switch {
		case errors.Is(err, cluster.ErrNoNode):
			writeError(w, http.StatusNotFound, err.Error(), nil)
			return
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
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
	s.routes[api.PathHA] = route{http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
		var req api.HARequest
		if err := decode(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), nil)
			return
		}
		names := []string{"group", req.Group, "level", req.Level}
		for _, n := range req.Prefer {
			names = append(names, "node", n)
		}
		if msg := badNames(names...); msg != "" {
			writeError(w, http.StatusBadRequest, msg, nil)
			return
		}
		if !s.current(w, r) {
			return
		}
		groups, err := s.eng.Groups(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if !slices.Contains(groups, req.Group) {
			writeError(w, http.StatusNotFound, "no such group: "+req.Group, nil)
			return
		}
		// Refused, with nothing changed: what no node would honour.
		switch off, err := cl.HAOff(r.Context()); {
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		case off != "":
			writeError(w, http.StatusConflict, fmt.Sprintf("%s, so no node would keep %s at %s; nothing changed (tell it here with clinit %s %s)",
				off, req.Group, req.Level, req.Group, req.Level), nil)
			return
		}
		t, err := s.eng.Tab(r.Context())
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
			return
		}
		if msg := cltab.HALevelProblem(t, req.Group, req.Level); msg != "" {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s: the cluster would keep %s running nothing; nothing changed (its levels: %s; stop runs it nowhere)",
				msg, req.Group, strings.Join(cltab.GroupLevels(t, req.Group), ", ")), nil)
			return
		}
		var warnings []string
		if len(req.Prefer) > 0 {
			unknown, members, err := cl.UnknownNodes(r.Context(), req.Prefer)
			if err != nil {
				writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
				return
			}
			for _, n := range unknown {
				warnings = append(warnings, fmt.Sprintf("preferred node %s is not in this cluster (members: %s): it ranks first only once it joins", n, strings.Join(members, ", ")))
			}
		}
		v, err := cl.EditHactl(r.Context(), req.Group, req.Level, req.Prefer)
		var invalid cltab.Errors
		switch {
		case errors.As(err, &invalid):
			writeError(w, http.StatusUnprocessableEntity, "the hactl would be invalid, nothing changed", invalid.Lines())
		case errors.Is(err, cluster.ErrRefused):
			writeError(w, http.StatusConflict, err.Error(), nil)
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		default:
			writeJSON(w, http.StatusOK, api.Message{Message: fmt.Sprintf("%s: HA level %s, committed as hactl version %d", req.Group, req.Level, v), Warnings: warnings})
		}
	}}
	s.routes[api.PathCluster] = route{http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
		var req api.ClusterRequest
		if err := decode(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error(), nil)
			return
		}
		var names []string
		if req.Group != "" {
			names = append(names, "group", req.Group)
		}
		if req.Node != "" {
			names = append(names, "node", req.Node)
		}
		if msg := badNames(names...); msg != "" {
			writeError(w, http.StatusBadRequest, msg, nil)
			return
		}
		msg, err := cl.Command(r.Context(), req)
		switch {
		case errors.Is(err, cluster.ErrRefused):
			writeError(w, http.StatusConflict, err.Error(), nil)
		case err != nil:
			writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		default:
			writeJSON(w, http.StatusOK, api.Message{Message: msg})
		}
	}}
	// HA groups move through the cluster, never by a local tell.
	s.isHA = func(ctx context.Context, g string) bool { return cl.IsHA(ctx, g) }
}
