package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ErrNoEmbeddedEtcd: the server joined has no embedded etcd (/db/info
// answers 404): it still runs on SQLite, or on an external datastore.
var ErrNoEmbeddedEtcd = errors.New("the server does not run K3s's embedded etcd: run `tpctl token create --role server` on it first " +
	"(it converts a SQLite server after a backup; a server on an external datastore is not converted)")

// VerifyServerJoin is Verify for a host joining as a server, then K3s's
// first step of a server join: /db/info, as user "server" with the
// token's passphrase, sent only over TLS verified against the CA the
// token names. It refuses a server without embedded etcd and a token that
// is not the server token.
func (v Verifier) VerifyServerJoin(ctx context.Context, server, token string) error {
	if err := v.Verify(ctx, server, token); err != nil {
		return err
	}
	u, err := ServerURL(server)
	if err != nil {
		return err
	}
	tok, err := ParseToken(token)
	if err != nil {
		return err
	}
	pass := tok.Credentials
	if user, p, ok := strings.Cut(pass, ":"); ok {
		if user != "server" {
			return fmt.Errorf("the %q token joins agents only: a server joins with the server token (`tpctl token create --role server`)", user)
		}
		pass = p
	}
	timeout := v.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	dial := v.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: timeout}
		dial = d.DialContext
	}
	ca, err := v.get(ctx, u, &tls.Config{InsecureSkipVerify: true}, dial, timeout) //nolint:gosec // checked against the token's hash below
	if err != nil {
		return fmt.Errorf("read the server's CA from %s/cacerts: %w", u, err)
	}
	if !tok.matchesCA(ca) {
		return fmt.Errorf("the server at %s changed its CA between two reads; nothing was sent to it", u.Host)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12},
		DialContext: dial, Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+"/db/info", nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("server", pass)
	resp, err := cl.Do(req)
	if err != nil {
		return fmt.Errorf("read the etcd members from %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return ErrNoEmbeddedEtcd
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("the server at %s refused the token (HTTP %s): a server joins with the server token (`tpctl token create --role server`)", u.Host, resp.Status)
	default:
		return fmt.Errorf("read the etcd members from %s: HTTP %s", u.Host, resp.Status)
	}
	var info struct {
		Members []json.RawMessage `json:"members"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil {
		return fmt.Errorf("read the etcd members from %s: %w", u.Host, err)
	}
	if len(info.Members) == 0 {
		return fmt.Errorf("the server at %s reports no etcd member", u.Host)
	}
	return nil
}
