// Package metrics exposes the service's Prometheus metrics: requests by
// route and status with latency histograms, logins by method and outcome,
// and the Go runtime and process collectors.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the registry (one per app: no global state) and the
// service's collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	webhooks *prometheus.CounterVec
	whDepth  prometheus.Gauge
	whOldest prometheus.Gauge
}

// New registers the collectors on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletauth_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "walletauth_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletauth_logins_total", Help: "Login attempts by method (wallet, email, partner, code) and outcome (ok or the error code).",
		}, []string{"method", "outcome"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "walletauth_webhook_deliveries_total", Help: "Webhook delivery attempts by outcome (delivered, failed: to be retried, dropped: the last retry failed).",
		}, []string{"outcome"}),
		whDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walletauth_webhook_queue_depth", Help: "Webhook events waiting for delivery (all instances).",
		}),
		whOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "walletauth_webhook_oldest_pending_seconds", Help: "Age of the oldest webhook event waiting for delivery (0: none).",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.logins, m.webhooks, m.whDepth, m.whOldest,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Middleware counts and times every request by its route pattern and
// method. No label takes a value the client chose, so the series stay
// bounded however many made-up paths and methods arrive: a path that
// matched no route counts as "unmatched", a method other than the standard
// ones as "OTHER" (MethodLabel).
func (m *Metrics) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		method := MethodLabel(c.Request.Method)
		m.requests.WithLabelValues(route, method, statusLabel(c.Writer.Status())).Inc()
		m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	}
}

// MethodLabel is the method label of a request: one of the methods of RFC
// 9110 (and PATCH) as sent, else "OTHER". Methods are case-sensitive: "get"
// is not GET.
func MethodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// statusLabel is the status code as written (the handlers choose it from
// the contract, never from the request); anything outside 100-599 is
// "other".
func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// Login records one login attempt's outcome.
func (m *Metrics) Login(method, outcome string) { m.logins.WithLabelValues(method, outcome).Inc() }

// WebhookDelivery records one webhook attempt's outcome: delivered,
// failed or dropped.
func (m *Metrics) WebhookDelivery(outcome string) { m.webhooks.WithLabelValues(outcome).Inc() }

// WebhookQueue records the webhook outbox: pending events and the age of
// the oldest.
func (m *Metrics) WebhookQueue(depth int64, oldest time.Duration) {
	m.whDepth.Set(float64(depth))
	m.whOldest.Set(oldest.Seconds())
}

// Handler serves the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
