package hub

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the hub's Prometheus series, on a registry of its own.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	bytesServed    prometheus.Counter
	blocksStored   prometheus.Counter
	bytesStored    prometheus.Counter
	flistsUploaded prometheus.Counter
	conversions    *prometheus.CounterVec
	authFailures   prometheus.Counter
	// gcDeletedBlocks counts blocks deleted by garbage collection.
	gcDeletedBlocks prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zos_hub_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		bytesServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zos_hub_served_bytes_total", Help: "Bytes of blocks and flists served.",
		}),
		blocksStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zos_hub_blocks_stored_total", Help: "New blocks stored (duplicates not counted).",
		}),
		bytesStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zos_hub_stored_bytes_total", Help: "Bytes of new blocks stored.",
		}),
		flistsUploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zos_hub_flists_stored_total", Help: "Flists stored by upload or conversion.",
		}),
		conversions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zos_hub_conversions_total", Help: "Image conversions by result (done, failed).",
		}, []string{"result"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zos_hub_auth_failures_total", Help: "Write requests refused for a missing, bad, stale or replayed signature.",
		}),
		gcDeletedBlocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zos_hub_gc_deleted_blocks_total", Help: "Blocks deleted by garbage collection.",
		}),
	}
	m.reg.MustRegister(m.requests, m.bytesServed, m.blocksStored, m.bytesStored, m.flistsUploaded, m.conversions, m.authFailures, m.gcDeletedBlocks)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument counts requests of a route by status code.
func (m *metrics) instrument(route string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
	})
}
