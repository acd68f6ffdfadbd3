package releasesig

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// throwaway is a key pair made for one test, never a release key.
func throwaway(t *testing.T, label string) (PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return PublicKey{Key: pub, Label: label}, priv
}

func keyLine(k PublicKey) string { return k.Fingerprint() + " " + k.Label + "\n" }

func sumsFor(files map[string][]byte) []byte {
	var b strings.Builder
	for name, data := range files {
		d := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(d[:]), name)
	}
	return []byte(b.String())
}

func TestVerifySums(t *testing.T) {
	current, currentPriv := throwaway(t, "current")
	next, nextPriv := throwaway(t, "next")
	_, otherPriv := throwaway(t, "not trusted")
	sums := sumsFor(map[string][]byte{"tpctl-linux-amd64": []byte("a binary")})
	v := NewVerifier([]PublicKey{current, next})

	t.Run("signed by the current key", func(t *testing.T) {
		k, err := v.VerifySums(sums, ed25519.Sign(currentPriv, sums))
		require.NoError(t, err)
		assert.Equal(t, "current", k.Label)
	})
	t.Run("signed by the next key (rotation)", func(t *testing.T) {
		k, err := v.VerifySums(sums, ed25519.Sign(nextPriv, sums))
		require.NoError(t, err)
		assert.Equal(t, "next", k.Label)
	})
	t.Run("tampered sums", func(t *testing.T) {
		sig := ed25519.Sign(currentPriv, sums)
		tampered := append([]byte{}, sums...)
		tampered[0] ^= 1
		_, err := v.VerifySums(tampered, sig)
		assert.ErrorIs(t, err, ErrBadSignature)
		_, err = v.VerifySums(append(append([]byte{}, sums...), "0000  extra\n"...), sig)
		assert.ErrorIs(t, err, ErrBadSignature, "a line added")
	})
	t.Run("wrong key", func(t *testing.T) {
		_, err := v.VerifySums(sums, ed25519.Sign(otherPriv, sums))
		assert.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("missing signature", func(t *testing.T) {
		_, err := v.VerifySums(sums, nil)
		assert.ErrorIs(t, err, ErrNoSignature)
	})
	t.Run("truncated signature", func(t *testing.T) {
		_, err := v.VerifySums(sums, ed25519.Sign(currentPriv, sums)[:63])
		assert.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("no trusted key", func(t *testing.T) {
		_, err := NewVerifier(nil).VerifySums(sums, ed25519.Sign(currentPriv, sums))
		assert.ErrorIs(t, err, ErrNoKeys)
	})
	t.Run("the verifier keeps its own copy of the keys", func(t *testing.T) {
		keys := []PublicKey{current}
		v := NewVerifier(keys)
		keys[0] = next
		_, err := v.VerifySums(sums, ed25519.Sign(currentPriv, sums))
		assert.NoError(t, err)
	})
}

func TestParseKeys(t *testing.T) {
	a, _ := throwaway(t, "2026 current")
	b, _ := throwaway(t, "next")
	keys, err := ParseKeys("# comment\n\n" + keyLine(a) + "  " + keyLine(b))
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, a.Key, keys[0].Key)
	assert.Equal(t, "2026 current", keys[0].Label)
	assert.Equal(t, b.Key, keys[1].Key)

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	require.NoError(t, err)
	for name, text := range map[string]string{
		"not base64":     "not-base64!\n",
		"not a key":      base64.StdEncoding.EncodeToString([]byte("hello")) + "\n",
		"not Ed25519":    base64.StdEncoding.EncodeToString(ecDER) + " p256\n",
		"raw 32 bytes":   base64.StdEncoding.EncodeToString(a.Key) + "\n",
		"listed twice":   keyLine(a) + keyLine(a),
		"bad second key": keyLine(a) + "AAAA\n",
	} {
		_, err := ParseKeys(text)
		assert.Error(t, err, name)
	}
}

func TestEmbeddedKeysParse(t *testing.T) {
	// keys.txt must always parse: a release build reads it, and a tpctl built
	// without a stamp trusts it.
	_, err := ParseKeys(embeddedKeys)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(strings.Fields(stripComments(embeddedKeys))), 4, "at most two keys: the current and the next")
}

func stripComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestVerifyFile(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tpctl-linux-amd64")
	require.NoError(t, os.WriteFile(bin, []byte("the released binary"), 0o755))
	sums := sumsFor(map[string][]byte{"tpctl-linux-amd64": []byte("the released binary"), "install.sh": []byte("#!/bin/sh\n")})

	require.NoError(t, VerifyBinary(bin, sums))
	other := filepath.Join(dir, "download.tmp")
	require.NoError(t, os.WriteFile(other, []byte("the released binary"), 0o600))
	require.NoError(t, VerifyFile(other, "tpctl-linux-amd64", sums), "a download under another name")
	assert.ErrorIs(t, VerifyBinary(other, sums), ErrNotListed)

	require.NoError(t, os.WriteFile(bin, []byte("the released binarY"), 0o755))
	err := VerifyBinary(bin, sums)
	assert.ErrorIs(t, err, ErrDigestMismatch)
	assert.Contains(t, err.Error(), "tpctl-linux-amd64")

	d := sha256.Sum256([]byte("x"))
	star := []byte(hex.EncodeToString(d[:]) + " *tpctl-linux-arm64\n")
	arm := filepath.Join(dir, "tpctl-linux-arm64")
	require.NoError(t, os.WriteFile(arm, []byte("x"), 0o755))
	assert.NoError(t, VerifyBinary(arm, star), "sha256sum's binary-mode marker")

	twice := append(append([]byte{}, star...), "0000000000000000000000000000000000000000000000000000000000000000  tpctl-linux-arm64\n"...)
	assert.ErrorContains(t, VerifyBinary(arm, twice), "twice")
	assert.ErrorContains(t, VerifyBinary(arm, []byte("XYZ  tpctl-linux-arm64\n")), "malformed")
	assert.Error(t, VerifyBinary(filepath.Join(dir, "absent"), sums))
}

// TestOpenSSLAgrees signs with openssl and verifies in Go, and the other way
// round: install.sh (openssl) and tpctl (Go) must accept exactly the same
// signatures.
func TestOpenSSLAgrees(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is missing: scripts/test-deps installs it, and CI must run this test")
		}
		t.Skip("needs openssl (scripts/test-deps installs it)")
	}
	dir := t.TempDir()
	pub, priv := throwaway(t, "test")
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "release.pem")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	pubFile := filepath.Join(dir, "pub.pem")
	// The PEM install.sh writes from the base64 it carries.
	require.NoError(t, os.WriteFile(pubFile, []byte("-----BEGIN PUBLIC KEY-----\n"+pub.Fingerprint()+"\n-----END PUBLIC KEY-----\n"), 0o644))
	sums := filepath.Join(dir, SumsFile)
	data := sumsFor(map[string][]byte{"tpctl-linux-amd64": []byte("bin")})
	require.NoError(t, os.WriteFile(sums, data, 0o644))

	run := func(args ...string) error {
		out, err := exec.Command(openssl, args...).CombinedOutput()
		t.Logf("openssl %s: %s", strings.Join(args, " "), out)
		return err
	}
	sigFile := filepath.Join(dir, SigFile)
	require.NoError(t, run("pkeyutl", "-sign", "-inkey", keyFile, "-rawin", "-in", sums, "-out", sigFile))
	sig, err := os.ReadFile(sigFile)
	require.NoError(t, err)
	assert.Equal(t, []byte(ed25519.Sign(priv, data)), sig, "Ed25519 is deterministic: openssl and Go sign alike")
	_, err = NewVerifier([]PublicKey{pub}).VerifySums(data, sig)
	require.NoError(t, err)

	verify := func() error {
		return run("pkeyutl", "-verify", "-pubin", "-inkey", pubFile, "-rawin", "-in", sums, "-sigfile", sigFile)
	}
	require.NoError(t, verify())
	bad := append([]byte{}, sig...)
	bad[10] ^= 1
	require.NoError(t, os.WriteFile(sigFile, bad, 0o644))
	assert.Error(t, verify(), "openssl refuses a corrupted signature")
	_, err = NewVerifier([]PublicKey{pub}).VerifySums(data, bad)
	assert.True(t, errors.Is(err, ErrBadSignature))
}

func TestKeysFrom(t *testing.T) {
	a, _ := throwaway(t, "a")
	b, _ := throwaway(t, "b")
	listed := "# comment\n" + keyLine(a)

	keys, err := keysFrom("", listed)
	require.NoError(t, err)
	require.Len(t, keys, 1, "no stamp: keys.txt")
	assert.Equal(t, a.Key, keys[0].Key)

	keys, err = keysFrom(b.Fingerprint()+","+a.Fingerprint(), listed)
	require.NoError(t, err, "the release stamps comma-separated keys")
	require.Len(t, keys, 2)
	assert.Equal(t, b.Key, keys[0].Key)
	assert.Equal(t, a.Key, keys[1].Key)

	_, err = keysFrom("not-a-key", listed)
	assert.ErrorContains(t, err, "stamped")
	_, err = keysFrom("", "AAAA\n")
	assert.ErrorContains(t, err, "keys.txt")

	keys, err = TrustedKeys()
	require.NoError(t, err)
	_, err = NewVerifier(keys).VerifySums([]byte("x"), make([]byte, 64))
	assert.Error(t, err, "whatever this build trusts, an all-zero signature is refused")
}
