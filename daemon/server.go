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
	routes map[string]Route
	opts   ServerOptions
}

// ServerOptions are what the rest of the node adds to the engine's
// requests (the cluster's); the zero value serves the engine alone.
type ServerOptions struct {
	// Reread rereads the cltab for an explicit reread and before a
	// request that depends on a changed one (Fresh); nil: the engine's
	// Reread.
	Reread func(ctx context.Context) (changed []string, err error)
	// IsHA reports a group the cluster places: a local tell of one is
	// refused. Nil: none is.
	IsHA func(ctx context.Context, group string) bool
	// Routes are more requests, by path, none of the engine's own.
	Routes map[string]Route
}

// Route is one request the protocol knows: its method and handler.
type Route struct {
	Method  string
	Handler http.HandlerFunc
}

// route dispatches by path, answering unknown paths and wrong methods
// with a JSON error like every other failure.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	rt, ok := s.routes[r.URL.Path]
	if !ok {
		WriteError(w, http.StatusNotFound, fmt.Sprintf("no such request: %s %s", r.Method, r.URL.Path), nil)
		return
	}
	if r.Method != rt.Method {
		w.Header().Set("Allow", rt.Method)
		WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s wants %s, not %s", r.URL.Path, rt.Method, r.Method), nil)
		return
	}
	rt.Handler(w, r)
}

// NewServer builds the HTTP server; Serve runs it on a listener.
// A route of opts on a path of the engine's own is a wiring mistake, and
// panics.
func NewServer(eng *Engine, log *zap.Logger, opts ServerOptions) *Server {
	s := &Server{eng: eng, log: log, opts: opts}
	if s.opts.Reread == nil {
		s.opts.Reread = eng.Reread
	}
	s.routes = map[string]Route{
		api.PathTell:     {http.MethodPost, s.tell},
		api.PathReread:   {http.MethodPost, s.reread},
		api.PathStatus:   {http.MethodGet, s.status},
		api.PathShutdown: {http.MethodPost, s.shutdown},
	}
	for path, rt := range opts.Routes {
		if _, ok := s.routes[path]; ok {
			panic("daemon: request " + path + " is served twice")
		}
		s.routes[path] = rt
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
			WriteError(w, http.StatusForbidden, fmt.Sprintf("permission denied: uid %d may not control this daemon", uid), nil)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, api.MaxRequestBody)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tell(w http.ResponseWriter, r *http.Request) {
	var req api.TellRequest
	if err := Decode(r, &req); err != nil {
		WriteError(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	names := []string{"level", req.Level}
	if req.Group != "" { // empty: the node's own group (SPEC 2)
		names = append(names, "group", req.Group)
	}
	if msg := BadNames(names...); msg != "" {
		WriteError(w, http.StatusBadRequest, msg, nil)
		return
	}
	if !Fresh(w, r, s.eng, s.opts.Reread) {
		return
	}
	if s.opts.IsHA != nil && req.Group != "" && s.opts.IsHA(r.Context(), req.Group) {
		WriteError(w, http.StatusConflict, fmt.Sprintf("%s is an HA group: use clinit --ha %s %s", req.Group, req.Group, req.Level), nil)
		return
	}
	g, err := s.eng.Tell(r.Context(), req.Group, req.Level)
	switch {
	case errors.Is(err, ErrNoGroup):
		WriteError(w, http.StatusNotFound, s.noGroup(r.Context(), g, req.Level, req.Group == ""), nil)
	case err != nil:
		WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
	default:
		WriteJSON(w, http.StatusOK, api.Message{Message: s.told(r.Context(), g, req.Level)})
	}
}

func (s *Server) reread(w http.ResponseWriter, r *http.Request) {
	changed, err := s.opts.Reread(r.Context())
	var invalid cltab.Errors
	switch {
	case errors.As(err, &invalid):
		WriteError(w, http.StatusUnprocessableEntity, "invalid cltab, nothing changed", invalid.Lines())
	case err != nil:
		WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
	case len(changed) == 0:
		WriteJSON(w, http.StatusOK, api.Message{Message: "cltab reread: no group changed"})
	default:
		WriteJSON(w, http.StatusOK, api.Message{Message: "cltab reread: changed " + strings.Join(changed, ", ")})
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.eng.Status(r.Context())
	if err != nil {
		WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

func (s *Server) shutdown(w http.ResponseWriter, r *http.Request) {
	// The answer comes once every group has stopped: a client's -k
	// returns when nothing is left running.
	if err := s.eng.Shutdown(r.Context()); err != nil {
		WriteError(w, http.StatusServiceUnavailable, err.Error(), nil)
		return
	}
	WriteJSON(w, http.StatusOK, api.Message{Message: "every group stopped; daemon exiting"})
}

// Decode reads one JSON object, strictly.
func Decode(r *http.Request, v any) error {
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

// WriteJSON answers v with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// WriteError answers an error: its message, and the lines of an invalid
// file when there are.
func WriteError(w http.ResponseWriter, code int, msg string, lines []string) {
	WriteJSON(w, code, api.Error{Error: msg, Lines: lines})
}
