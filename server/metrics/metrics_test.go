package metrics

import (
	"bufio"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := &Registry{}
	c := r.NewCounterVec("x_calls_total", "Calls.\nSecond line.", "op", "result")
	c.Inc("Commit", "S_OK")
	c.Add(2, "Commit", "S_OK")
	c.Inc(`we"ird\`, "E")
	plain := r.NewCounterVec("x_plain_total", "No labels, never incremented.")
	_ = plain
	h := r.NewHistogramVec("x_seconds", "Durations.", []float64{0.1, 1}, "op")
	h.Observe(0.05, "a")
	h.Observe(0.5, "a")
	h.Observe(5, "a")
	r.NewGaugeFunc("x_sets", "Sets.", func() []Sample {
		return []Sample{{[]string{"b"}, 2}, {[]string{"a"}, 1.5}}
	}, "state")
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := `# HELP x_calls_total Calls.\nSecond line.
# TYPE x_calls_total counter
x_calls_total{op="Commit",result="S_OK"} 3
x_calls_total{op="we\"ird\\",result="E"} 1
# HELP x_plain_total No labels, never incremented.
# TYPE x_plain_total counter
x_plain_total 0
# HELP x_seconds Durations.
# TYPE x_seconds histogram
x_seconds_bucket{op="a",le="0.1"} 1
x_seconds_bucket{op="a",le="1"} 2
x_seconds_bucket{op="a",le="+Inf"} 3
x_seconds_sum{op="a"} 5.55
x_seconds_count{op="a"} 3
# HELP x_sets Sets.
# TYPE x_sets gauge
x_sets{state="a"} 1.5
x_sets{state="b"} 2
`
	if got := rec.Body.String(); got != want {
		t.Errorf("exposition:\n%s\nwant:\n%s", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("content type %q", ct)
	}
	if c.Value("Commit", "S_OK") != 3 || h.Count("a") != 3 {
		t.Error("Value/Count")
	}
	rec = httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", nil))
	if rec.Code != 405 {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestLabelCountChecked(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("wrong label count did not panic")
		}
	}()
	r := &Registry{}
	r.NewCounterVec("y_total", "Y.", "a").Inc()
}

func BenchmarkScrape(b *testing.B) {
	r := &Registry{}
	c := r.NewCounterVec("b_total", "B.", "op", "result")
	h := r.NewHistogramVec("b_seconds", "B.", DurationBuckets, "op")
	for _, op := range strings.Fields("a b c d e f g h i j k l m") {
		c.Inc(op, "S_OK")
		h.Observe(0.01, op)
	}
	for b.Loop() {
		r.WriteText(bufio.NewWriter(io.Discard))
	}
}
