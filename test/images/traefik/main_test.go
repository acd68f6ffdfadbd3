package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestEntryPoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	web, websecure, ping := freeAddr(t), freeAddr(t), freeAddr(t)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, web, websecure, ping) }()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the stand-in's own certificate
	}}
	get := func(url string) (int, string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	require.Eventually(t, func() bool { _, _, err := get("http://" + ping + "/ping"); return err == nil }, 5*time.Second, 50*time.Millisecond)
	code, body, err := get("http://" + ping + "/ping")
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, "OK", body)
	code, body, err = get("http://" + web + "/anything")
	require.NoError(t, err)
	assert.Equal(t, 404, code)
	assert.Equal(t, "404 page not found\n", body)
	code, _, err = get("https://" + websecure + "/")
	require.NoError(t, err)
	assert.Equal(t, 404, code)
	cancel()
	assert.NoError(t, <-done)
}
