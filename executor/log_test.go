package executor

import (
	"io"

	"github.com/sirupsen/logrus"
)

func testLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}
