package conformance

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// SummaryLine is "N passed, M failed, K skipped against TARGET in D".
func (r Report) SummaryLine() string {
	s := r.Summary()
	if r.Target != "" {
		s += " against " + r.Target
	}
	return s + " in " + r.Duration.Round(time.Millisecond).String()
}

// Merge appends other's results to r (e.g. smbtorture's to the checks')
// and extends r's duration by other's.
func (r *Report) Merge(other Report) {
	for _, res := range other.Results {
		r.Add(res)
	}
	r.Duration += other.Duration
}

// FailureText is "expected X, observed Y" (with the message before it
// when there is one), or the message alone when nothing was compared.
func (res Result) FailureText() string {
	if res.Expected == "" && res.Observed == "" {
		return res.Message
	}
	s := fmt.Sprintf("expected %s, observed %s", res.Expected, res.Observed)
	if res.Message != "" {
		s = res.Message + ": " + s
	}
	return s
}

// JUnit XML (the subset Jenkins, GitLab and GitHub reporters read).
type junitSuite struct {
	XMLName   xml.Name    `xml:"testsuite"`
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Props     *junitProps `xml:"properties,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitProps struct {
	Props []junitProp `xml:"property"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes rep as one JUnit testsuite: a testcase per result
// (name: the check's ID, classname: its spec section), a failure element
// with "expected X, observed Y", a skipped element with the reason, and
// the check's log as system-out.
func WriteJUnit(w io.Writer, rep Report) error {
	s := junitSuite{Name: "fsrvp-conformance", Tests: len(rep.Results), Failures: rep.Failed, Skipped: rep.Skipped,
		Time: seconds(rep.Duration)}
	if !rep.Started.IsZero() {
		s.Timestamp = rep.Started.UTC().Format("2006-01-02T15:04:05")
	}
	if rep.Target != "" {
		s.Props = &junitProps{[]junitProp{{Name: "target", Value: rep.Target}}}
	}
	for _, r := range rep.Results {
		c := junitCase{Name: r.ID, Classname: r.Section, Time: seconds(r.Duration), SystemOut: strings.Join(r.Log, "\n")}
		if c.Classname == "" {
			c.Classname = "unsectioned"
		}
		switch r.Status {
		case Fail:
			text := r.Title
			if r.Message != "" {
				text += "\n" + r.Message
			}
			c.Failure = &junitMessage{Message: r.FailureText(), Type: "fail", Text: text}
		case Skip:
			c.Skipped = &junitMessage{Message: r.Message}
		}
		s.Cases = append(s.Cases, c)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteMarkdown writes rep as Markdown: the summary line, a table of
// results per spec section (sections in the order they first appear), and
// a list of the failures with what was expected and what was observed.
func WriteMarkdown(w io.Writer, rep Report) error {
	var b strings.Builder
	b.WriteString("# FSRVP conformance report\n\n")
	if rep.Target != "" {
		fmt.Fprintf(&b, "Target: `%s`", rep.Target)
		if !rep.Started.IsZero() {
			fmt.Fprintf(&b, ", started %s", rep.Started.UTC().Format(time.RFC3339))
		}
		b.WriteString("\n\n")
	}
	verdict := "PASS"
	if !rep.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "**%s**: %s\n", verdict, rep.SummaryLine())
	var order []string
	bySection := map[string][]Result{}
	for _, r := range rep.Results {
		sec := r.Section
		if sec == "" {
			sec = "(no section)"
		}
		if _, ok := bySection[sec]; !ok {
			order = append(order, sec)
		}
		bySection[sec] = append(bySection[sec], r)
	}
	for _, sec := range order {
		rs := bySection[sec]
		var p, f, s int
		for _, r := range rs {
			switch r.Status {
			case Pass:
				p++
			case Fail:
				f++
			case Skip:
				s++
			}
		}
		fmt.Fprintf(&b, "\n## %s\n\n%d passed, %d failed, %d skipped\n\n", mdText(sec), p, f, s)
		b.WriteString("| Check | Result | Time | Title / note |\n|---|---|---|---|\n")
		for _, r := range rs {
			note := mdText(r.Title)
			switch r.Status {
			case Fail:
				note += " — see Failures"
			case Skip:
				if r.Message != "" {
					note += " — skipped: " + mdText(r.Message)
				}
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.ID, strings.ToUpper(string(r.Status)),
				r.Duration.Round(time.Millisecond), note)
		}
	}
	if rep.Failed > 0 {
		b.WriteString("\n## Failures\n")
		for _, r := range rep.Results {
			if r.Status != Fail {
				continue
			}
			fmt.Fprintf(&b, "\n### `%s` (%s)\n\n%s\n\n", r.ID, mdText(r.Section), mdText(r.Title))
			fmt.Fprintf(&b, "- Expected: %s\n- Observed: %s\n", mdCode(r.Expected), mdCode(r.Observed))
			if r.Message != "" {
				fmt.Fprintf(&b, "- Message:\n\n```\n%s\n```\n", strings.ReplaceAll(r.Message, "```", "'''"))
			}
			if len(r.Log) > 0 {
				fmt.Fprintf(&b, "- Log:\n\n```\n%s\n```\n", strings.ReplaceAll(strings.Join(r.Log, "\n"), "```", "'''"))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdText keeps s on one table row: newlines become spaces, pipes are
// escaped (a panic's stack keeps its first line only).
func mdText(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.ReplaceAll(s, "|", `\|`)
}

func mdCode(s string) string {
	if s == "" {
		return "(not recorded)"
	}
	return "`" + strings.ReplaceAll(mdText(s), "`", "'") + "`"
}
