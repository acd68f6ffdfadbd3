// Command probe runs network checks from inside a pod and prints one line per
// check; it exits 1 when any fails. The end-to-end tests run it as a pod.
//
//	probe --dns kubernetes.default --http http://sink.default.svc:8080/healthz \
//	      --tcp sink.default.svc:5170=hello --api
//
// --api authenticates to the API server with the pod's service-account token
// (a SelfSubjectReview) and prints the user it was seen as.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type config struct {
	dns, http, tcp, udp listFlag
	api                 bool
	apiURL              string
	timeout             time.Duration
}

func parse(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&c.dns, "dns", "name to resolve (repeatable)")
	fs.Var(&c.http, "http", "URL that must answer 200 (repeatable)")
	fs.Var(&c.tcp, "tcp", "host:port=payload to send over TCP (repeatable)")
	fs.Var(&c.udp, "udp", "host:port=payload to send over UDP (repeatable)")
	fs.BoolVar(&c.api, "api", false, "authenticate to the API server with the service-account token")
	fs.StringVar(&c.apiURL, "api-url", "https://kubernetes.default.svc", "API server URL for --api")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of each check")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("parse arguments: %w", err)
	}
	for _, t := range append(append([]string{}, c.tcp...), c.udp...) {
		addr, _, ok := strings.Cut(t, "=")
		if _, _, err := net.SplitHostPort(addr); !ok || err != nil {
			return c, fmt.Errorf("want host:port=payload, got %q", t)
		}
	}
	return c, nil
}

func main() {
	c, err := parse(os.Args[1:], os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(2)
	}
	failed := false
	check := func(what string, f func(ctx context.Context) (string, error)) {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		res, err := f(ctx)
		if err != nil {
			failed = true
			fmt.Printf("FAIL %s: %v\n", what, err)
			return
		}
		fmt.Printf("ok %s: %s\n", what, res)
	}
	for _, name := range c.dns {
		check("dns "+name, func(ctx context.Context) (string, error) {
			addrs, err := net.DefaultResolver.LookupHost(ctx, name)
			return strings.Join(addrs, ","), err
		})
	}
	for _, u := range c.http {
		check("http "+u, func(ctx context.Context) (string, error) { return httpGet(ctx, http.DefaultClient, u) })
	}
	for _, t := range c.tcp {
		check("tcp "+t, func(ctx context.Context) (string, error) { return send(ctx, "tcp", t) })
	}
	for _, t := range c.udp {
		check("udp "+t, func(ctx context.Context) (string, error) { return send(ctx, "udp", t) })
	}
	if c.api {
		check("api "+c.apiURL, func(ctx context.Context) (string, error) { return whoami(ctx, c.apiURL) })
	}
	if failed {
		os.Exit(1)
	}
}

func httpGet(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("get: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, body)
	}
	return strings.TrimSpace(string(body)), nil
}

func send(ctx context.Context, network, spec string) (string, error) {
	addr, payload, _ := strings.Cut(spec, "=")
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(payload)); err != nil {
		return "", fmt.Errorf("write: %w", err)
	}
	return fmt.Sprintf("sent %d bytes to %s", len(payload), c.RemoteAddr()), nil
}

// whoami posts a SelfSubjectReview with the service-account token.
func whoami(ctx context.Context, base string) (string, error) {
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	caPEM, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return "", fmt.Errorf("read ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return "", fmt.Errorf("no certificate in %s/ca.crt", saDir)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/apis/authentication.k8s.io/v1/selfsubjectreviews", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, data)
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &review); err != nil {
		return "", fmt.Errorf("decode review: %w", err)
	}
	return "user=" + review.Status.UserInfo.Username, nil
}
