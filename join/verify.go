package join

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// ServerURL checks a --server value: https, a host, and a port (K3s's
// supervisor and API server share 6443 unless told otherwise).
func ServerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("--server %q is not https://HOST:PORT", s)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "6443")
	}
	u.Path = ""
	return u, nil
}

// Verifier checks a server before a host joins it: the server's port
// answers TCP, its /cacerts (fetched without trusting anything, as K3s's
// agent does) has the sha256 the token names, and the server's certificate
// verifies against that CA. The token's credentials are never sent.
type Verifier struct {
	// Dial opens the TCP connections (net.Dialer's by default).
	Dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	Timeout time.Duration
}

// Verify runs the check.
func (v Verifier) Verify(ctx context.Context, server, token string) error {
	u, err := ServerURL(server)
	if err != nil {
		return err
	}
	tok, err := ParseToken(token)
	if err != nil {
		return err
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
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(cctx, "tcp", u.Host)
	if err != nil {
		return fmt.Errorf("%s/tcp on %s is not reachable from this host (%v): the server's API and supervisor must be reachable from every node", u.Port(), u.Hostname(), err)
	}
	conn.Close()
	// First without trust: only to read the CA bundle and hash it.
	ca, err := v.get(ctx, u, &tls.Config{InsecureSkipVerify: true}, dial, timeout) //nolint:gosec // the body is checked against the token's hash below
	if err != nil {
		return fmt.Errorf("read the server's CA from %s/cacerts: %w", u, err)
	}
	if !tok.matchesCA(ca) {
		return fmt.Errorf("the server at %s serves a CA whose sha256 is %s, not the %s the token names: "+
			"this is not the cluster the token was made for (or someone is in between); nothing was sent to it", u.Host, HashCA(ca), tok.CAHash)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("the server's /cacerts holds no PEM certificate")
	}
	// Then trusting only that CA: the server's certificate must verify.
	if _, err := v.get(ctx, u, &tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}, dial, timeout); err != nil {
		return fmt.Errorf("the server's certificate does not verify against the CA the token names: %w", err)
	}
	return nil
}

// get reads /cacerts over tc, bounded in size and time.
func (v Verifier) get(ctx context.Context, u *url.URL, tc *tls.Config, dial func(context.Context, string, string) (net.Conn, error), timeout time.Duration) ([]byte, error) {
	tr := &http.Transport{TLSClientConfig: tc, DialContext: dial, Proxy: nil, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+"/cacerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCACertsBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCACertsBytes {
		return nil, errors.New("larger than 1 MiB")
	}
	return b, nil
}
