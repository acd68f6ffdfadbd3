package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	sqlite "modernc.org/sqlite"
)

// backupMethod names the copy method in the manifest.
const backupMethod = "sqlite3 online backup API (one step)"

// backuper is the driver connection's online backup entry point.
type backuper interface {
	NewBackup(dstURI string) (*sqlite.Backup, error)
}

// sqliteURI is a file: URI for path with the query q.
func sqliteURI(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// copyDatabase writes a consistent copy of the SQLite database src to dst
// (which must not exist) with SQLite's online backup API, then checks the
// copy and reads kine's row count and highest revision from it.
func copyDatabase(ctx context.Context, src, dst string) (DatastoreInfo, error) {
	if _, err := os.Stat(src); err != nil {
		return DatastoreInfo{}, fmt.Errorf("datastore %s: %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return DatastoreInfo{}, fmt.Errorf("copy target %s exists", dst)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(30000)")
	db, err := sql.Open("sqlite", sqliteURI(src, q))
	if err != nil {
		return DatastoreInfo{}, fmt.Errorf("open datastore %s: %w", src, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return DatastoreInfo{}, fmt.Errorf("open datastore %s: %w", src, err)
	}
	defer conn.Close()
	// The copy is made by one backup step over all pages: SQLite holds one
	// read transaction for it, so it is the database as of one commit.
	err = conn.Raw(func(dc any) error {
		b, ok := dc.(backuper)
		if !ok {
			return errors.New("the SQLite driver has no online backup API")
		}
		bk, err := b.NewBackup(dst)
		if err != nil {
			return fmt.Errorf("start backup to %s: %w", dst, err)
		}
		more, stepErr := bk.Step(-1)
		finErr := bk.Finish()
		if stepErr != nil {
			return fmt.Errorf("copy %s: %w", src, stepErr)
		}
		if more {
			return fmt.Errorf("copy %s: backup step left pages", src)
		}
		if finErr != nil {
			return fmt.Errorf("finish copy of %s: %w", src, finErr)
		}
		return nil
	})
	if err != nil {
		_ = os.Remove(dst)
		return DatastoreInfo{}, err //nolint:wrapcheck // wrapped above
	}
	if err := os.Chmod(dst, 0o600); err != nil {
		return DatastoreInfo{}, fmt.Errorf("chmod %s: %w", dst, err)
	}
	info, err := inspectDatabase(ctx, dst)
	if err != nil {
		return DatastoreInfo{}, err
	}
	info.Method = backupMethod
	return info, nil
}

// inspectDatabase opens a database copy read-only, runs SQLite's integrity
// check and reads kine's table.
func inspectDatabase(ctx context.Context, path string) (DatastoreInfo, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	db, err := sql.Open("sqlite", sqliteURI(path, q))
	if err != nil {
		return DatastoreInfo{}, fmt.Errorf("open copy %s: %w", path, err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil {
		return DatastoreInfo{}, fmt.Errorf("check copy %s: %w", path, err)
	}
	if check != "ok" {
		return DatastoreInfo{}, fmt.Errorf("copy %s fails SQLite's integrity check: %s", path, check)
	}
	var info DatastoreInfo
	var rev sql.NullInt64
	err = db.QueryRowContext(ctx, "SELECT COUNT(*), MAX(id) FROM kine").Scan(&info.Rows, &rev)
	if err != nil {
		return DatastoreInfo{}, fmt.Errorf("read kine's table in %s: %w", path, err)
	}
	info.Revision = rev.Int64
	return info, nil
}
