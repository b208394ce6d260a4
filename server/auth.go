package server

// auth.go: the RPC security providers built from [auth].

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fsrvpd/fsrvpd/rpc"
	"github.com/fsrvpd/fsrvpd/rpc/auth/krb5"
	"github.com/fsrvpd/fsrvpd/rpc/auth/ntlm"
	"github.com/fsrvpd/fsrvpd/rpc/auth/spnego"
	"github.com/fsrvpd/fsrvpd/rpc/auth/winbind"
	"github.com/fsrvpd/fsrvpd/server/config"
	"github.com/fsrvpd/fsrvpd/server/fsrvp"
)

// authSources are the credential sources and mechanisms the providers are
// built from. Other sources plug in here: an NTLM Verifier (e.g. winbind)
// is appended to verifiers, a GSS mechanism (e.g. Kerberos from a keytab)
// to mechs, which SPNEGO then offers before NTLM.
type authSources struct {
	verifiers []ntlm.Verifier
	mechs     []spnego.Mechanism
}

// authProviders returns the rpc.AuthProviders for cfg, or none when no
// credential source is configured (authenticated binds are then refused).
func authProviders(cfg config.Config) ([]rpc.AuthProvider, error) {
	var src authSources
	if len(cfg.Auth.Accounts) > 0 {
		accts := make([]ntlm.Account, 0, len(cfg.Auth.Accounts))
		for _, a := range cfg.Auth.Accounts {
			hexHash, err := a.LoadNTHash()
			if err != nil {
				return nil, err
			}
			h, err := ntlm.ParseNTHash(hexHash)
			if err != nil {
				return nil, fmt.Errorf("auth.account %q: %w", a.User, err)
			}
			accts = append(accts, ntlm.Account{User: a.User, Domain: a.Domain, NTHash: h, SIDs: a.AllSIDs()})
		}
		src.verifiers = append(src.verifiers, ntlm.NewAccounts(accts))
	}

	var kerberos *krb5.Provider
	if k := cfg.Auth.Kerberos; k != nil {
		a, err := krb5.New(krb5.Config{Keytab: k.Keytab, Principal: k.Principal, MaxClockSkew: k.MaxClockSkew.Duration})
		if err != nil {
			return nil, fmt.Errorf("auth.kerberos: %w", err)
		}
		kerberos = krb5.NewProvider(a)
		src.mechs = append(src.mechs, kerberos)
	}
	if w := cfg.Auth.Winbind; w != nil {
		v, err := winbind.New(winbind.Config{NtlmAuth: w.NtlmAuth, Wbinfo: w.Wbinfo, SMBConf: w.SMBConf, Timeout: w.Timeout.Duration})
		if err != nil {
			return nil, fmt.Errorf("auth.winbind: %w", err)
		}
		src.verifiers = append(src.verifiers, v)
	}

	var providers []rpc.AuthProvider
	if kerberos != nil && slices.Contains(cfg.Auth.Mechanisms, "kerberos") {
		providers = append(providers, kerberos)
	}
	var mechs []spnego.Mechanism
	mechs = append(mechs, src.mechs...)
	if len(src.verifiers) > 0 {
		name := strings.ToUpper(cfg.Server.Name)
		if len(name) > 15 {
			name = name[:15]
		}
		n := ntlm.NewProvider(ntlm.Config{ServerName: name, DomainName: cfg.Auth.Domain, Verifier: ntlm.Chain(src.verifiers...)})
		if slices.Contains(cfg.Auth.Mechanisms, "ntlm") {
			providers = append(providers, n)
		}
		mechs = append(mechs, n)
	}
	if slices.Contains(cfg.Auth.Mechanisms, "spnego") && len(mechs) > 0 {
		providers = append(providers, spnego.NewProvider(mechs...))
	}
	return providers, nil
}

// accessPolicy maps [fsrvp] to the service's access rule.
func accessPolicy(cfg config.Config) (p fsrvp.AccessPolicy) {
	p.AllowUnauthenticated = cfg.FSRVP.AllowUnauthenticated
	p.MinLevel = rpc.AuthLevelIntegrity
	if cfg.FSRVP.MinAuthLevel == "privacy" {
		p.MinLevel = rpc.AuthLevelPrivacy
	}
	p.PipeRequiresRPCAuth = cfg.FSRVP.PipeAuth == "rpc"
	return p
}
