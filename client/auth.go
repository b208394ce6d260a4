package client

// auth.go: RPC-level authentication of the bind (MS-RPCE §2.2.1.1.7-8),
// through go-msrpc's client-side security providers.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
)

// Authentication levels for Auth.Level.
const (
	LevelIntegrity = "integrity" // RPC_C_AUTHN_LEVEL_PKT_INTEGRITY ("sign"); MS-FSRVP's minimum
	LevelPrivacy   = "privacy"   // RPC_C_AUTHN_LEVEL_PKT_PRIVACY ("seal")
	LevelConnect   = "connect"   // authenticates the bind only; FSRVP servers refuse it
)

// Mechanisms for Auth.Mechanism.
const (
	MechanismSPNEGO = "spnego" // auth_type 9, negotiating NTLM
	MechanismNTLM   = "ntlm"   // auth_type 10
)

// Auth is how Dial authenticates its bind. The secret (Password or
// NTHash) is never logged.
type Auth struct {
	// User is the account; "DOMAIN\user" and "user@DOMAIN" set Domain too.
	User, Domain string
	// Password, or NTHash (32 hex digits): one of them.
	Password, NTHash string
	// Level is LevelIntegrity (default), LevelPrivacy or LevelConnect.
	Level string
	// Mechanism is MechanismSPNEGO (default) or MechanismNTLM.
	// Other mechanisms (Kerberos from a ccache or keytab) add a case in
	// rpcOptions and bring their credentials in Options.
	Mechanism string
	// Options are extra go-msrpc options for the bind (credentials and
	// mechanisms of other security providers).
	Options []dcerpc.Option
}

// WithAuth authenticates the bind as a.
func WithAuth(a Auth) Option {
	return func(c *config) {
		a := a
		c.auth = &a
	}
}

// ParseUser splits "DOMAIN\user", "DOMAIN/user" and "user@DOMAIN".
func ParseUser(s string) (user, domain string) {
	if i := strings.IndexAny(s, `\/`); i >= 0 {
		return s[i+1:], s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// rpcOptions turns a into go-msrpc bind options.
func (a *Auth) rpcOptions() ([]dcerpc.Option, error) {
	user, domain := a.User, a.Domain
	if u, d := ParseUser(user); d != "" {
		user = u
		if domain == "" {
			domain = d
		}
	}
	var opts []dcerpc.Option
	switch a.Level {
	case "", LevelIntegrity:
		opts = append(opts, dcerpc.WithSign())
	case LevelPrivacy:
		opts = append(opts, dcerpc.WithSeal())
	case LevelConnect:
		opts = append(opts, dcerpc.WithConnect())
	default:
		return nil, fmt.Errorf("client: authentication level %q is not integrity, privacy or connect", a.Level)
	}
	if user != "" {
		var copts []credential.Option
		if domain != "" {
			copts = append(copts, credential.Domain(domain))
		}
		switch {
		case a.Password != "" && a.NTHash != "":
			return nil, errors.New("client: give a password or an NT hash, not both")
		case a.NTHash != "":
			if len(a.NTHash) != 32 {
				return nil, errors.New("client: an NT hash is 32 hexadecimal digits")
			}
			opts = append(opts, dcerpc.WithCredentials(credential.NewFromNTHash(user, a.NTHash, copts...)))
		default:
			opts = append(opts, dcerpc.WithCredentials(credential.NewFromPassword(user, a.Password, copts...)))
		}
	} else if len(a.Options) == 0 {
		return nil, errors.New("client: authentication needs a user")
	}
	switch a.Mechanism {
	case "", MechanismSPNEGO:
		opts = append(opts, dcerpc.WithMechanism(ssp.SPNEGO), dcerpc.WithMechanism(ssp.NTLM))
	case MechanismNTLM:
		opts = append(opts, dcerpc.WithMechanism(ssp.NTLM))
	default:
		return nil, fmt.Errorf("client: mechanism %q is not spnego or ntlm", a.Mechanism)
	}
	return append(opts, a.Options...), nil
}
