package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clinit/clinit/api"
	"github.com/clinit/clinit/cltab"
)

// Server answers the local protocol (package api) for an Engine.
type Server struct {
	eng    *Engine
	log    *zap.Logger
	srv    *http.Server
	routes map[string]route
	// isHA reports a group the cluster places (set by serveCluster):
	// a local tell of one is refused.
	isHA func(ctx context.Context, group string) bool
	// refresh rereads a changed cltab before a request that depends on
	// it (see current); nil rereads it in the engine alone.
	refresh func(ctx context.Context) error
}

// route is one request the protocol knows: its method and handler.
type route struct {
	method string
	h      http.HandlerFunc
}

// route dispatches by path, answering unknown paths and wrong methods
// with a JSON error like every other failure.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	rt, ok := s.routes[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such request: %s %s", r.Method, r.URL.Path), nil)
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s wants %s, not %s", r.URL.Path, rt.method, r.Method), nil)
		return
	}
	rt.h(w, r)
}

// NewServer builds the HTTP server; Serve runs it on a listener.
func NewServer(eng *Engine, log *zap.Logger) *Server {
	s := &Server{eng: eng, log: log}
	s.routes = map[string]route{
		api.PathTell:     {http.MethodPost, s.tell},
		api.PathReread:   {http.MethodPost, s.reread},
		api.PathStatus:   {http.MethodGet, s.status},
		api.PathShutdown: {http.MethodPost, s.shutdown},
	}
	s.srv = &http.Server{
		Handler:           s.guard(http.HandlerFunc(s.route)),
		ConnContext:       peerUID,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return s
}

// Serve serves until Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops serving, giving requests in flight a moment to finish.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
}

// guard refuses other users (SO_PEERCRED) and bounds request bodies.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.VersionHeader, api.Version)
		if uid, ok := allowed(r.Context()); !ok {
			s.log.Warn("request refused", zap.Int("uid", uid), zap.String("path", r.URL.Path))
			writeError(w, http.StatusForbidden, fmt.Sprintf("permission denied: uid %d may not control this daemon", uid), nil)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, api.MaxRequestBody)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tell(w http.ResponseWriter, r *http.Request) {
	var req api.TellRequest
	if err := decode(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	names := []string{"level", req.Level}
	if req.Group != "" { // empty: the node's own group (SPEC 2)
		names = append(names, "group", req.Group)
	}
	if msg := badNames(names...); msg != "" {
		writeError(w, http.StatusBadRequest, msg, nil)
		return
	}
	if !s.current(w, r) {
		return
	}
	if s.isHA != nil && req.Group != "" && s.isHA(r.Context(), req.Group) {
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is an HA group: use clinit --ha %s %s", req.Group, req.Group, req.Level), nil)
		return
	}
	g, err := s.eng.Tell(r.Context(), req.Group, req.Level)
	switch {
	case errors.Is(err, ErrNoGroup):
		writeError(w, http.StatusNotFound, s.noGroup(r.Context(), g, req.Level, req.Group == ""), nil)
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
	default:
		writeJSON(w, http.StatusOK, api.Message{Message: s.told(r.Context(), g, req.Level)})
	}
}

func (s *Server) reread(w http.ResponseWriter, r *http.Request) {
	changed, err := s.eng.Reread(r.Context())
	var invalid cltab.Errors
	switch {
	case errors.As(err, &invalid):
		writeError(w, http.StatusUnprocessableEntity, "invalid cltab, nothing changed", invalid.Lines())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
	case len(changed) == 0:
		writeJSON(w, http.StatusOK, api.Message{Message: "cltab reread: no group changed"})
	default:
		writeJSON(w, http.StatusOK, api.Message{Message: "cltab reread: changed " + strings.Join(changed, ", ")})
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.eng.Status(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) shutdown(w http.ResponseWriter, r *http.Request) {
	// The answer comes once every group has stopped: a client's -k
	// returns when nothing is left running.
	if err := s.eng.Shutdown(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, api.Message{Message: "every group stopped; daemon exiting"})
}

// decode reads one JSON object, strictly.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("request body over %d bytes", tooBig.Limit)
		}
		return fmt.Errorf("bad request body: %w", err)
	}
	if dec.More() {
		return errors.New("bad request body: more than one JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string, lines []string) {
	writeJSON(w, code, api.Error{Error: msg, Lines: lines})
}
