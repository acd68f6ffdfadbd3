package launcher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the datastore is SQLite, as kine's
)

// TokenFile is K3s's server token, below the data dir.
func (l Layout) TokenFile() string { return l.path("server", "token") }

// ensureToken returns the server token's passphrase, writing
// <data-dir>/server/token at the first start as K3s does: the secure format
// "K10<sha256 of the server CA>::server:<passphrase>", mode 0600
// (K3s: pkg/clientaccess/token.go formats the token; pkg/cluster/bootstrap.go
// reads it back from the data dir).
func ensureToken(l Layout, caPEM []byte) (string, error) {
	b, err := os.ReadFile(l.TokenFile())
	if err == nil {
		return tokenPassphrase(strings.TrimSpace(string(b))), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", l.TokenFile(), err)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	pass := hex.EncodeToString(raw)
	sum := sha256.Sum256(caPEM)
	tok := "K10" + hex.EncodeToString(sum[:]) + "::server:" + pass + "\n"
	if err := writeFileAtomic(l.TokenFile(), []byte(tok), 0o600); err != nil {
		return "", err
	}
	return pass, nil
}

// tokenPassphrase is the passphrase of a full ("K10…::server:pass") or short
// token.
func tokenPassphrase(tok string) string {
	if i := strings.LastIndex(tok, "::"); i >= 0 {
		tok = tok[i+2:]
	}
	if u, p, ok := strings.Cut(tok, ":"); ok && u == "server" {
		return p
	}
	return tok
}

// checkBootstrap does what K3s's bootstrap does with an existing
// datastore: K3s stores its bootstrap data (the CA material) in the
// datastore encrypted with the token's passphrase, and refuses to start on
// a datastore whose bootstrap data was encrypted with another token. The
// stand-in keeps the passphrase's digest in a table of the datastore
// (kine ignores tables it does not know): the first start records it, a
// later start with another token fails the way K3s does (K3s:
// pkg/cluster/bootstrap.go, "bootstrap data already found and encrypted with
// different token").
func checkBootstrap(ctx context.Context, dbFile, passphrase string) error {
	if err := os.MkdirAll(filepath.Dir(dbFile), 0o700); err != nil {
		return fmt.Errorf("make %s: %w", filepath.Dir(dbFile), err)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(30000)")
	u := url.URL{Scheme: "file", Path: dbFile, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return fmt.Errorf("open datastore %s: %w", dbFile, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS launcher_bootstrap (id INTEGER PRIMARY KEY CHECK (id = 1), token_sha256 TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("datastore %s: %w", dbFile, err)
	}
	sum := sha256.Sum256([]byte(passphrase))
	want := hex.EncodeToString(sum[:])
	var got string
	err = db.QueryRowContext(ctx, `SELECT token_sha256 FROM launcher_bootstrap WHERE id = 1`).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := db.ExecContext(ctx, `INSERT INTO launcher_bootstrap (id, token_sha256) VALUES (1, ?)`, want); err != nil {
			return fmt.Errorf("datastore %s: record the bootstrap token: %w", dbFile, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("datastore %s: %w", dbFile, err)
	case got != want:
		return errors.New("bootstrap data already found and encrypted with different token")
	}
	return nil
}
