// Package dashboard holds the web page `berth monitor` serves at /: plain
// HTML, CSS and JavaScript embedded in the binary (no CDN, no build step).
// The page polls the monitor's /api/ and draws its charts on <canvas>.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html app.js style.css
var files embed.FS

// FS is the dashboard's files.
func FS() fs.FS { return files }

// Handler serves the dashboard's files, index.html at /.
func Handler() http.Handler {
	fsrv := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:")
		fsrv.ServeHTTP(w, r)
	})
}
