package logs

import (
	"io"
)

// TimestampFormat is the layout Format uses for timestamps: Docker's
// RFC3339NanoFixed, RFC 3339 with always nine fractional digits so that
// lines align.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Format writes e's line to w as `docker logs` prints it, preceded by its
// time (TimestampFormat, UTC) and a space when timestamps is set. Choosing
// w by e.Stream is the caller's job.
func Format(w io.Writer, e Entry, timestamps bool) error {
	var buf []byte
	if timestamps {
		buf = make([]byte, 0, len(TimestampFormat)+1+len(e.Line))
		buf = e.Time.UTC().AppendFormat(buf, TimestampFormat)
		buf = append(buf, ' ')
		buf = append(buf, e.Line...)
	} else {
		buf = e.Line
	}
	_, err := w.Write(buf)
	return err
}
