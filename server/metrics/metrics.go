// Package metrics is a small Prometheus registry: counters and histograms
// with labels, gauges computed at scrape time, and an HTTP handler writing
// the text exposition format (version 0.0.4). It is what fsrvpd needs and
// no more, in place of prometheus/client_golang and its dependencies.
package metrics

import (
	"bufio"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Registry holds metric families in registration order.
type Registry struct {
	mu       sync.Mutex
	families []family
}

type family interface {
	write(w *bufio.Writer)
}

// Sample is one value of a gauge family, with its label values in the
// order of the family's label names.
type Sample struct {
	Labels []string
	Value  float64
}

func header(w *bufio.Writer, name, help, typ string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func escapeValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

// labelString renders {a="x",b="y"}, plus extra pairs (for le).
func labelString(names, values []string, extra ...string) string {
	if len(names) == 0 && len(extra) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s="%s"`, n, escapeValue(values[i]))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%s="%s"`, extra[i], escapeValue(extra[i+1]))
	}
	b.WriteByte('}')
	return b.String()
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func key(values []string) string { return strings.Join(values, "\x00") }

func checkLabels(name string, names, values []string) {
	if len(names) != len(values) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", name, len(names), len(values)))
	}
}

// CounterVec is a counter family.
type CounterVec struct {
	name, help string
	labels     []string
	mu         sync.Mutex
	vals       map[string]*counterVal
}

type counterVal struct {
	labels []string
	v      float64
}

// NewCounterVec registers a counter family.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{name: name, help: help, labels: labels, vals: map[string]*counterVal{}}
	r.add(c)
	return c
}

// Add adds v (>= 0) to the counter with the given label values.
func (c *CounterVec) Add(v float64, values ...string) {
	checkLabels(c.name, c.labels, values)
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(values)
	cv := c.vals[k]
	if cv == nil {
		cv = &counterVal{labels: slices.Clone(values)}
		c.vals[k] = cv
	}
	cv.v += v
}

// Inc adds one.
func (c *CounterVec) Inc(values ...string) { c.Add(1, values...) }

// Value returns the counter's current value (tests).
func (c *CounterVec) Value(values ...string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cv := c.vals[key(values)]; cv != nil {
		return cv.v
	}
	return 0
}

func (c *CounterVec) write(w *bufio.Writer) {
	header(w, c.name, c.help, "counter")
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.labels) == 0 && len(c.vals) == 0 {
		fmt.Fprintf(w, "%s 0\n", c.name)
	}
	for _, k := range sortedKeys(c.vals) {
		cv := c.vals[k]
		fmt.Fprintf(w, "%s%s %s\n", c.name, labelString(c.labels, cv.labels), formatFloat(cv.v))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// HistogramVec is a histogram family.
type HistogramVec struct {
	name, help string
	labels     []string
	buckets    []float64
	mu         sync.Mutex
	vals       map[string]*histVal
}

type histVal struct {
	labels []string
	counts []uint64 // per bucket, not cumulative
	count  uint64
	sum    float64
}

// DurationBuckets suit call latencies in seconds: 1 ms to 5 min.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// NewHistogramVec registers a histogram family with the given upper
// bucket bounds (ascending; +Inf is implied).
func (r *Registry) NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	h := &HistogramVec{name: name, help: help, labels: labels, buckets: buckets, vals: map[string]*histVal{}}
	r.add(h)
	return h
}

// Observe records v.
func (h *HistogramVec) Observe(v float64, values ...string) {
	checkLabels(h.name, h.labels, values)
	h.mu.Lock()
	defer h.mu.Unlock()
	k := key(values)
	hv := h.vals[k]
	if hv == nil {
		hv = &histVal{labels: slices.Clone(values), counts: make([]uint64, len(h.buckets))}
		h.vals[k] = hv
	}
	for i, ub := range h.buckets {
		if v <= ub {
			hv.counts[i]++
			break
		}
	}
	hv.count++
	hv.sum += v
}

// Count returns how many values were observed (tests).
func (h *HistogramVec) Count(values ...string) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hv := h.vals[key(values)]; hv != nil {
		return hv.count
	}
	return 0
}

func (h *HistogramVec) write(w *bufio.Writer) {
	header(w, h.name, h.help, "histogram")
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range sortedKeys(h.vals) {
		hv := h.vals[k]
		var cum uint64
		for i, ub := range h.buckets {
			cum += hv.counts[i]
			fmt.Fprintf(w, "%s_bucket%s %d\n", h.name, labelString(h.labels, hv.labels, "le", formatFloat(ub)), cum)
		}
		fmt.Fprintf(w, "%s_bucket%s %d\n", h.name, labelString(h.labels, hv.labels, "le", "+Inf"), hv.count)
		fmt.Fprintf(w, "%s_sum%s %s\n", h.name, labelString(h.labels, hv.labels), formatFloat(hv.sum))
		fmt.Fprintf(w, "%s_count%s %d\n", h.name, labelString(h.labels, hv.labels), hv.count)
	}
}

type gaugeFunc struct {
	name, help string
	labels     []string
	collect    func() []Sample
}

// NewGaugeFunc registers a gauge family whose samples collect returns at
// every scrape. collect must be safe for concurrent use.
func (r *Registry) NewGaugeFunc(name, help string, collect func() []Sample, labels ...string) {
	r.add(&gaugeFunc{name: name, help: help, labels: labels, collect: collect})
}

func (g *gaugeFunc) write(w *bufio.Writer) {
	header(w, g.name, g.help, "gauge")
	samples := g.collect()
	slices.SortFunc(samples, func(a, b Sample) int { return strings.Compare(key(a.Labels), key(b.Labels)) })
	for _, s := range samples {
		checkLabels(g.name, g.labels, s.Labels)
		fmt.Fprintf(w, "%s%s %s\n", g.name, labelString(g.labels, s.Labels), formatFloat(s.Value))
	}
}

func (r *Registry) add(f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.families = append(r.families, f)
}

// WriteText writes every family in the text exposition format.
func (r *Registry) WriteText(w *bufio.Writer) error {
	r.mu.Lock()
	fams := slices.Clone(r.families)
	r.mu.Unlock()
	for _, f := range fams {
		f.write(w)
	}
	return w.Flush()
}

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the registry at any path.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		r.WriteText(bufio.NewWriter(w))
	})
}
