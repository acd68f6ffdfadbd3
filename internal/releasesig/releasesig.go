// Package releasesig verifies a tpctl release: its SHA256SUMS carries an
// Ed25519 signature (SHA256SUMS.sig, the raw 64 bytes over the file's bytes,
// as `openssl pkeyutl -sign -rawin` writes it) by one of the release keys
// tpctl trusts, and a binary's sha256 is the one SHA256SUMS lists.
//
// install.sh checks the same signature with `openssl pkeyutl -verify -rawin`
// against the same keys (scripts/release writes them into it), so the
// one-line install and `tpctl upgrade` trust exactly the same releases.
package releasesig

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// SumsFile and SigFile are the names of a release's digest list and of its
// signature.
const (
	SumsFile = "SHA256SUMS"
	SigFile  = "SHA256SUMS.sig"
)

// The errors a verification fails with (wrapped, so errors.Is names which).
var (
	ErrNoKeys         = errors.New("no trusted release key")
	ErrNoSignature    = errors.New("no signature")
	ErrBadSignature   = errors.New("signature does not verify with any trusted release key")
	ErrNotListed      = errors.New("not listed in " + SumsFile)
	ErrDigestMismatch = errors.New("sha256 mismatch")
)

// PublicKey is a trusted release key with the label it is listed under.
type PublicKey struct {
	Key   ed25519.PublicKey
	Label string
}

// Fingerprint is the base64 of the key's DER SubjectPublicKeyInfo: the form
// keys.txt and install.sh carry it in.
func (k PublicKey) Fingerprint() string {
	der, err := x509.MarshalPKIXPublicKey(k.Key)
	if err != nil { // an ed25519.PublicKey of the wrong length; ParseKey never returns one
		return "invalid"
	}
	return base64.StdEncoding.EncodeToString(der)
}

//go:embed keys.txt
var embeddedKeys string

// stampedKeys is set by scripts/release (-X, comma-separated base64 DER
// SubjectPublicKeyInfo): the same keys its install.sh carries. A build
// without it trusts keys.txt.
var stampedKeys string

// TrustedKeys are the keys this tpctl trusts: those the release build stamped
// in, else keys.txt. ErrNoKeys when there are none.
func TrustedKeys() ([]PublicKey, error) {
	return keysFrom(stampedKeys, embeddedKeys)
}

// keysFrom is TrustedKeys for a given stamp and keys.txt.
func keysFrom(stamp, listed string) ([]PublicKey, error) {
	if stamp != "" {
		keys, err := ParseKeys(strings.ReplaceAll(stamp, ",", "\n"))
		if err != nil {
			return nil, fmt.Errorf("release keys stamped into this build: %w", err)
		}
		return keys, nil
	}
	keys, err := ParseKeys(listed)
	if err != nil {
		return nil, fmt.Errorf("keys.txt: %w", err)
	}
	return keys, nil
}

// ParseKey parses one key: the base64 of an Ed25519 DER SubjectPublicKeyInfo.
func ParseKey(b64 string) (ed25519.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("release key %q is not base64: %w", b64, err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("release key %q: %w", b64, err)
	}
	k, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("release key %q is a %T, not Ed25519", b64, pub)
	}
	return k, nil
}

// ParseKeys parses a key list: one key a line (see ParseKey), then an
// optional label; blank lines and lines starting with # are skipped. A key
// listed twice is an error (a list that is not what its author meant).
func ParseKeys(text string) ([]PublicKey, error) {
	var keys []PublicKey
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b64, label, _ := strings.Cut(line, " ")
		k, err := ParseKey(b64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if seen[b64] {
			return nil, fmt.Errorf("line %d: release key %s is listed twice", n, b64)
		}
		seen[b64] = true
		keys = append(keys, PublicKey{Key: k, Label: strings.TrimSpace(label)})
	}
	return keys, sc.Err()
}

// Verifier checks releases against a fixed set of keys.
type Verifier struct {
	keys []PublicKey
}

// NewVerifier trusts exactly keys (tests pass a throwaway key; tpctl passes
// TrustedKeys()).
func NewVerifier(keys []PublicKey) *Verifier {
	return &Verifier{keys: append([]PublicKey(nil), keys...)}
}

// VerifySums checks that sig is a signature of sums by one of the verifier's
// keys and returns that key.
func (v *Verifier) VerifySums(sums, sig []byte) (PublicKey, error) {
	if len(v.keys) == 0 {
		return PublicKey{}, fmt.Errorf("%s: %w (see docs/RELEASING.md)", SumsFile, ErrNoKeys)
	}
	if len(sig) == 0 {
		return PublicKey{}, fmt.Errorf("%s: %w (%s is missing or empty)", SumsFile, ErrNoSignature, SigFile)
	}
	if len(sig) != ed25519.SignatureSize {
		return PublicKey{}, fmt.Errorf("%s: %w (%s is %d bytes, an Ed25519 signature is %d)",
			SumsFile, ErrBadSignature, SigFile, len(sig), ed25519.SignatureSize)
	}
	for _, k := range v.keys {
		if ed25519.Verify(k.Key, sums, sig) {
			return k, nil
		}
	}
	return PublicKey{}, fmt.Errorf("%s: %w (%d keys tried)", SumsFile, ErrBadSignature, len(v.keys))
}

// VerifySums checks sums against sig with the keys this tpctl trusts.
func VerifySums(sums, sig []byte) error {
	keys, err := TrustedKeys()
	if err != nil {
		return err
	}
	_, err = NewVerifier(keys).VerifySums(sums, sig)
	return err
}

// Lookup returns the sha256 (lower-case hex) sums lists for name. Two
// different digests for one name, or a malformed line naming it, are errors.
func Lookup(sums []byte, name string) (string, error) {
	want := ""
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		digest, file, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		file = strings.TrimPrefix(strings.TrimLeft(file, " "), "*")
		if file != name {
			continue
		}
		if len(digest) != sha256.Size*2 || strings.Trim(digest, "0123456789abcdef") != "" {
			return "", fmt.Errorf("%s: malformed digest %q for %s", SumsFile, digest, name)
		}
		if want != "" && want != digest {
			return "", fmt.Errorf("%s lists %s twice, with different digests", SumsFile, name)
		}
		want = digest
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if want == "" {
		return "", fmt.Errorf("%s: %w", name, ErrNotListed)
	}
	return want, nil
}

// VerifyFile checks that the file at path has the sha256 sums lists for name.
// sums must have been verified (VerifySums) first.
func VerifyFile(path, name string, sums []byte) error {
	want, err := Lookup(sums, name)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: %w: got %s, %s lists %s for %s", path, ErrDigestMismatch, got, SumsFile, want, name)
	}
	return nil
}

// VerifyBinary is VerifyFile under the file's own name (tpctl-linux-amd64).
func VerifyBinary(path string, sums []byte) error {
	return VerifyFile(path, filepath.Base(path), sums)
}
