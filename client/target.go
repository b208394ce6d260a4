package client

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/oiweiwei/go-msrpc/dcerpc"
)

// Target is a parsed server address.
type Target struct {
	Host string // IP address or host name
	Port string // TCP port; "" means: ask the endpoint mapper
}

// ParseTarget parses the target forms Dial accepts: "host", "host:port",
// "[v6addr]:port", and ncacn_ip_tcp string bindings with or without an
// endpoint ("ncacn_ip_tcp:host[port]", "ncacn_ip_tcp:host"). String binding
// options ("[port,sign]") and other protocol sequences are rejected: they
// need the authentication support that is not there yet.
func ParseTarget(s string) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, fmt.Errorf("empty server address")
	}
	if isStringBinding(s) {
		b, err := dcerpc.ParseStringBinding(s)
		if err != nil {
			return Target{}, fmt.Errorf("server %q: %w", s, err)
		}
		if b.ProtocolSequence != dcerpc.ProtocolSequenceIPTCP {
			return Target{}, fmt.Errorf("server %q: only ncacn_ip_tcp is supported", s)
		}
		if len(b.Extra) > 0 {
			return Target{}, fmt.Errorf("server %q: string binding options %q are not supported", s, strings.Join(b.Extra, ","))
		}
		if b.ObjectUUID != nil || b.Username != "" || b.Password != "" {
			return Target{}, fmt.Errorf("server %q: object UUIDs and credentials in string bindings are not supported", s)
		}
		t := Target{Host: strings.Trim(b.NetworkAddress, "[]"), Port: b.Endpoint}
		return t, t.validate(s)
	}
	if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil {
		return Target{Host: ip.String()}, nil
	}
	if strings.Contains(s, ":") {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return Target{}, fmt.Errorf("server %q: %w", s, err)
		}
		t := Target{Host: host, Port: port}
		return t, t.validate(s)
	}
	t := Target{Host: s}
	return t, t.validate(s)
}

func isStringBinding(s string) bool {
	proto, _, ok := strings.Cut(s, ":")
	if at := strings.LastIndex(proto, "@"); at >= 0 {
		proto = proto[at+1:]
	}
	return ok && (strings.HasPrefix(proto, "ncacn_") || strings.HasPrefix(proto, "ncadg_") || proto == "ncalrpc")
}

func (t Target) validate(orig string) error {
	if t.Host == "" {
		return fmt.Errorf("server %q: missing host", orig)
	}
	if strings.ContainsAny(t.Host, `[]\/@ `) {
		return fmt.Errorf("server %q: invalid host %q", orig, t.Host)
	}
	if t.Port != "" {
		if p, err := strconv.ParseUint(t.Port, 10, 16); err != nil || p == 0 {
			return fmt.Errorf("server %q: invalid port %q", orig, t.Port)
		}
	}
	return nil
}

// Binding returns the ncacn_ip_tcp string binding of t, without an endpoint
// when t.Port is empty.
func (t Target) Binding() string {
	if t.Port == "" {
		return "ncacn_ip_tcp:" + t.Host
	}
	return "ncacn_ip_tcp:" + t.Host + "[" + t.Port + "]"
}

// String returns "host:port", or "host" without a port.
func (t Target) String() string {
	if t.Port == "" {
		return t.Host
	}
	return net.JoinHostPort(t.Host, t.Port)
}
