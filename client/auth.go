package client

// auth.go: RPC-level authentication of the bind (MS-RPCE §2.2.1.1.7-8),
// through go-msrpc's client-side security providers.

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/oiweiwei/go-msrpc/dcerpc"
	"github.com/oiweiwei/go-msrpc/ssp"
	"github.com/oiweiwei/go-msrpc/ssp/credential"
	"github.com/oiweiwei/go-msrpc/ssp/krb5"
	"github.com/oiweiwei/gokrb5.fork/v9/credentials"
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
	// MechanismKerberos is auth_type 16 (RPC_C_AUTHN_GSS_KERBEROS); it
	// needs Auth.Kerberos. MechanismSPNEGO with Auth.Kerberos set
	// negotiates Kerberos instead of NTLM.
	MechanismKerberos = "kerberos"
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
	// Kerberos, when set, authenticates with Kerberos instead of NTLM.
	Kerberos *Kerberos
}

// Kerberos says where the Kerberos client finds its configuration and
// credentials (go-msrpc's krb5 security provider, DCE style). The ticket
// comes from CCache, else from Keytab for Auth.User, else from Auth.User's
// Password (an AS exchange with the KDC of krb5.conf).
type Kerberos struct {
	// Krb5Conf is the krb5.conf naming the realm's KDC; default
	// $KRB5_CONFIG, else /etc/krb5.conf.
	Krb5Conf string
	// CCache is a credential cache file (as kinit writes it); default
	// $KRB5CCNAME when it names a FILE: cache and no Keytab or Password
	// is given.
	CCache string
	// Keytab holds Auth.User's keys.
	Keytab string
	// Target is the server's service principal, e.g.
	// "cifs/fs1.example.com" (the one in fsrvpd's keytab). Required.
	Target string
}

// kerberosOptions builds go-msrpc's krb5 configuration and credential.
func (a *Auth) kerberosOptions(user string, copts []credential.Option) ([]dcerpc.Option, error) {
	k := a.Kerberos
	if k.Target == "" {
		return nil, errors.New("client: Kerberos needs the server's service principal (Target)")
	}
	cfg := krb5.NewConfig()
	if k.Krb5Conf != "" {
		conf, err := krb5.LoadKRB5Conf(k.Krb5Conf)
		if err != nil {
			return nil, fmt.Errorf("client: krb5.conf %s: %w", k.Krb5Conf, err)
		}
		cfg.KRB5Config, cfg.KRB5ConfigPath = conf, k.Krb5Conf
	}
	ccache := k.CCache
	if ccache == "" && k.Keytab == "" && a.Password == "" {
		if env := os.Getenv("KRB5CCNAME"); env != "" {
			ccache = strings.TrimPrefix(env, "FILE:")
			if strings.Contains(ccache, ":") {
				return nil, fmt.Errorf("client: KRB5CCNAME %q is not a FILE: cache", env)
			}
		}
	}
	var cred credential.Credential
	switch {
	case a.NTHash != "":
		return nil, errors.New("client: Kerberos takes a password, a keytab or a credential cache, not an NT hash")
	case ccache != "":
		cc, err := credentials.LoadCCache(ccache)
		if err != nil {
			return nil, fmt.Errorf("client: credential cache %s: %w", ccache, err)
		}
		if user == "" {
			user = strings.Join(cc.DefaultPrincipal.PrincipalName.NameString, "/")
			copts = append(copts, credential.Domain(cc.DefaultPrincipal.Realm))
		}
		cred = credential.NewFromCCacheV9(user, cc, copts...)
	case k.Keytab != "":
		if user == "" {
			return nil, errors.New("client: a keytab needs the user (principal) whose keys it holds")
		}
		cred = credential.NewFromKeytabFile(user, k.Keytab, copts...)
	case user != "" && a.Password != "":
		cred = credential.NewFromPassword(user, a.Password, copts...)
	default:
		return nil, errors.New("client: Kerberos needs a credential cache (KRB5CCNAME), a keytab or a user and password")
	}
	opts := []dcerpc.Option{dcerpc.WithTargetName(k.Target), dcerpc.WithCredentials(cred)}
	switch a.Mechanism {
	case "", MechanismSPNEGO:
		opts = append(opts, dcerpc.WithMechanism(ssp.SPNEGO), dcerpc.WithMechanism(ssp.KRB5, cfg))
	case MechanismKerberos:
		opts = append(opts, dcerpc.WithMechanism(ssp.KRB5, cfg))
	default:
		return nil, fmt.Errorf("client: mechanism %q cannot carry Kerberos (want spnego or kerberos)", a.Mechanism)
	}
	return opts, nil
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

// RPCOptions returns a's go-msrpc bind options (security level,
// credentials, mechanisms), for clients of other interfaces such as
// client/scmp. Bind with a context from gssapi.NewSecurityContext.
func (a Auth) RPCOptions() ([]dcerpc.Option, error) { return a.rpcOptions() }

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
	if a.Kerberos != nil {
		var copts []credential.Option
		if domain != "" {
			copts = append(copts, credential.Domain(domain))
		}
		kopts, err := a.kerberosOptions(user, copts)
		if err != nil {
			return nil, err
		}
		return append(append(opts, kopts...), a.Options...), nil
	}
	if a.Mechanism == MechanismKerberos {
		return nil, errors.New("client: the kerberos mechanism needs Auth.Kerberos")
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
