package logs

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Entry is one record of a container's log.
type Entry struct {
	// Stream is "stdout" or "stderr".
	Stream string
	// Time is when the line was read from the container (UTC).
	Time time.Time
	// Line is the text as the container printed it, with its trailing
	// "\n"; a chunk of an over-long line, or output the container left
	// unterminated when it exited, has none.
	Line []byte
}

const hexDigits = "0123456789abcdef"

// appendRecord appends one json-file record, newline-terminated, to dst:
// {"log":<line[+"\n"]>,"stream":<stream>,"time":<t in RFC 3339 with ns>}.
// stream must already be escaped (see appendEscaped).
func appendRecord(dst, line []byte, newline bool, stream []byte, t time.Time) []byte {
	dst = append(dst, `{"log":"`...)
	dst = appendEscaped(dst, line)
	if newline {
		dst = append(dst, `\n`...)
	}
	dst = append(dst, `","stream":"`...)
	dst = append(dst, stream...)
	dst = append(dst, `","time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n"...)
}

// appendEscaped appends s as the inside of a JSON string, escaped exactly as
// Docker's json-file driver does: \" \\ \n \r get short escapes, other
// control characters and < > & become \u00XX, U+2028 and U+2029 are
// escaped, and bytes that are not valid UTF-8 become \ufffd.
func appendEscaped(dst, s []byte) []byte {
	safe := 0 // start of the run of bytes not yet copied
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[safe:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			safe = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[safe:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[safe:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		safe = i
	}
	return append(dst, s[safe:]...)
}

// record is the decoded form of one line of the file.
type record struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// decodeRecord parses one line of a log file (without its "\n"). ok is
// false for anything that is not a record, such as the torn last line a
// crash leaves behind.
func decodeRecord(line []byte) (e Entry, ok bool) {
	if len(line) < 2 || line[0] != '{' {
		return Entry{}, false
	}
	var r record
	if err := json.Unmarshal(line, &r); err != nil || r.Log == "" {
		return Entry{}, false
	}
	return Entry{Stream: r.Stream, Time: r.Time, Line: []byte(r.Log)}, true
}
