package query

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"net/http"
	"strconv"
	"time"

	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/ledger"
)

// Submitter hands a signed transaction to consensus and waits for its block.
type Submitter interface {
	Submit(ctx context.Context, tx []byte) (SubmitResult, error)
}

// SubmitResult is the outcome of POST /tx.
type SubmitResult struct {
	Code    uint32 `json:"code"`
	Log     string `json:"log,omitempty"`
	Height  int64  `json:"height,omitempty"`
	Hash    string `json:"hash,omitempty"`
	Created uint64 `json:"created,omitempty"`
}

// Status is GET /status.
type Status struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	AppHash string `json:"app_hash"`
}

// AccountView is GET /accounts/{key}.
type AccountView struct {
	Key     key.Public `json:"key"`
	Balance uint64     `json:"balance"`
	Nonce   uint64     `json:"nonce"`
	Twin    uint32     `json:"twin,omitempty"`
}

type server struct {
	m      *ledger.Machine
	submit Submitter
	log    *slog.Logger
}

// NewHandler serves the API over m; submit may be nil (then POST /tx is
// refused).
func NewHandler(m *ledger.Machine, submit Submitter, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{m: m, submit: submit, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", s.status)
	mux.HandleFunc("GET /params", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, m.Params()) })
	mux.HandleFunc("GET /accounts/{key}", s.account)
	mux.HandleFunc("GET /twins/{id}", getByID("twin", m.Twin))
	mux.HandleFunc("GET /farms", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, nonNil(m.Farms())) })
	mux.HandleFunc("GET /farms/{id}", getByID("farm", m.Farm))
	mux.HandleFunc("GET /nodes", s.nodes)
	mux.HandleFunc("GET /nodes/{id}", getByID("node", m.Node))
	mux.HandleFunc("GET /contracts", s.contracts)
	mux.HandleFunc("GET /contracts/{id}", getByID("contract", m.Contract))
	mux.HandleFunc("GET /contracts/{id}/bills", s.bills)
	mux.HandleFunc("GET /proposals/{id}", getByID("proposal", m.Proposal))
	mux.HandleFunc("GET /estimate", s.estimate)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("POST /tx", s.tx)
	return mux
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(apiError{Error: fmt.Sprintf(format, args...)})
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, Status{ChainID: s.m.ChainID(), Height: s.m.Height(), AppHash: hex.EncodeToString(s.m.AppHash())})
}

func pathUint(w http.ResponseWriter, r *http.Request, name string, bits int) (uint64, bool) {
	v, err := strconv.ParseUint(r.PathValue(name), 10, bits)
	if err != nil {
		fail(w, http.StatusBadRequest, "%s must be a number", name)
		return 0, false
	}
	return v, true
}

// getByID serves GET …/{id} for one kind of object: the id must be a number
// that fits ID, and an id get does not find is a 404.
func getByID[ID uint32 | uint64, T any](kind string, get func(ID) (T, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathUint(w, r, "id", bits.Len64(uint64(^ID(0))))
		if !ok {
			return
		}
		v, found := get(ID(id))
		if !found {
			fail(w, http.StatusNotFound, "%s %d not found", kind, id)
			return
		}
		writeJSON(w, v)
	}
}

func (s *server) account(w http.ResponseWriter, r *http.Request) {
	k, err := key.ParsePublic(r.PathValue("key"))
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	a, _ := s.m.Account(k)
	v := AccountView{Key: k, Balance: a.Balance, Nonce: a.Nonce}
	if t, ok := s.m.TwinByAccount(k); ok {
		v.Twin = t.ID
	}
	writeJSON(w, v)
}

// queryUints parses the named query parameters as unsigned numbers.
func queryUints(r *http.Request, names ...string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, n := range names {
		v := r.URL.Query().Get(n)
		if v == "" {
			continue
		}
		u, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s must be a number", n)
		}
		out[n] = u
	}
	return out, nil
}

func (s *server) nodes(w http.ResponseWriter, r *http.Request) {
	q, err := queryUints(r, "farm", "free_cru", "free_mru", "free_sru", "free_hru", "free_ips", "renter", "limit")
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	f := ledger.NodeFilter{Farm: uint32(q["farm"]), Country: r.URL.Query().Get("country"), RentedBy: uint32(q["renter"]), Limit: int(q["limit"]),
		MinFree: grid.Capacity{CRU: q["free_cru"], MRU: q["free_mru"], SRU: q["free_sru"], HRU: q["free_hru"], IPV4U: q["free_ips"]}}
	if v := r.URL.Query().Get("online"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(w, http.StatusBadRequest, "online must be true or false")
			return
		}
		f.Online = &b
	}
	writeJSON(w, nonNil(s.m.Nodes(f)))
}

func (s *server) contracts(w http.ResponseWriter, r *http.Request) {
	q, err := queryUints(r, "twin", "node", "limit")
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	f := ledger.ContractFilter{Twin: uint32(q["twin"]), Node: uint32(q["node"]), Limit: int(q["limit"]),
		State: ledger.ContractState(r.URL.Query().Get("state")), Type: ledger.ContractType(r.URL.Query().Get("type"))}
	writeJSON(w, nonNil(s.m.Contracts(f)))
}

func (s *server) bills(w http.ResponseWriter, r *http.Request) {
	id, ok := pathUint(w, r, "id", 64)
	if !ok {
		return
	}
	if _, found := s.m.Contract(id); !found {
		fail(w, http.StatusNotFound, "contract %d not found", id)
		return
	}
	writeJSON(w, nonNil(s.m.Bills(id)))
}

func (s *server) estimate(w http.ResponseWriter, r *http.Request) {
	q, err := queryUints(r, "cru", "mru", "sru", "hru", "ips", "hours", "balance")
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	hours := q["hours"]
	if hours == 0 {
		hours = 1
	}
	c := grid.Capacity{CRU: q["cru"], MRU: q["mru"], SRU: q["sru"], HRU: q["hru"], IPV4U: q["ips"]}
	writeJSON(w, ledger.EstimateNodeContract(s.m.Params().Pricing, c, q["ips"], hours*3600, q["balance"]))
}

func (s *server) tx(w http.ResponseWriter, r *http.Request) {
	if s.submit == nil {
		fail(w, http.StatusServiceUnavailable, "this server does not accept transactions")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, ledger.MaxTxSize+1))
	if err != nil {
		fail(w, http.StatusBadRequest, "read: %v", err)
		return
	}
	if _, err := s.m.CheckTx(body); err != nil {
		writeJSON(w, SubmitResult{Code: ledger.Code(err), Log: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	res, err := s.submit.Submit(ctx, body)
	if err != nil {
		s.log.Warn("submit failed", "err", err)
		code := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			code = http.StatusGatewayTimeout
		}
		fail(w, code, "%v", err)
		return
	}
	writeJSON(w, res)
}

func (s *server) events(w http.ResponseWriter, r *http.Request) {
	q, err := queryUints(r, "since", "node", "twin", "contract", "limit")
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	f := ledger.EventFilter{Since: int64(q["since"]), Node: uint32(q["node"]), Twin: uint32(q["twin"]), Contract: q["contract"], Limit: int(q["limit"])}
	writeJSON(w, nonNil(s.m.Events(f)))
}
