// Command traefik is the stand-in for the Traefik ingress controller that
// K3s deploys by default: like Traefik without routes it answers every
// request on its web entry point (:8000) and its websecure entry point
// (:8443, TLS with a certificate made at start) with 404 page not found, and
// /ping on :9000 with OK. It exists so that the node holds ports 80 and 443
// through the traefik LoadBalancer Service, as a K3s node does.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, ":8000", ":8443", ":9000"); err != nil {
		fmt.Fprintln(os.Stderr, "traefik:", err)
		os.Exit(1)
	}
}

// Handler answers as Traefik does without a matching route.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "404 page not found", http.StatusNotFound)
	})
}

// Ping answers Traefik's health check.
func Ping() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
	return mux
}

// SelfSigned is the default certificate, as Traefik serves one of its own.
func SelfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "TRAEFIK DEFAULT CERT"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Run serves the three entry points until ctx ends.
func Run(ctx context.Context, web, websecure, ping string) error {
	cert, err := SelfSigned()
	if err != nil {
		return err
	}
	servers := []struct {
		addr string
		srv  *http.Server
		tls  bool
	}{
		{web, &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}, false},
		{websecure, &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second,
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}, true},
		{ping, &http.Server{Handler: Ping(), ReadHeaderTimeout: 10 * time.Second}, false},
	}
	errs := make(chan error, len(servers))
	for _, s := range servers {
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", s.addr, err)
		}
		go func() {
			var err error
			if s.tls {
				err = s.srv.ServeTLS(l, "", "")
			} else {
				err = s.srv.Serve(l)
			}
			errs <- err
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.srv.Shutdown(sctx)
	}
	return nil
}
