package reexec

import (
	berthruntime "github.com/berthsh/berth/pkg/runtime"
)

func init() {
	berthruntime.InitIfRequested()
	berthruntime.SuperviseIfRequested()
}
