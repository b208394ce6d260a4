module github.com/fsrvpd/fsrvpd

go 1.26.8

require (
	github.com/BurntSushi/toml v1.5.0 // indirect
	github.com/geoffgarside/ber v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/hirochachacha/go-smb2 v1.1.0 // indirect
	github.com/oiweiwei/go-msrpc v1.5.2 // indirect
	github.com/sirupsen/logrus v1.10.2 // indirect
	go.etcd.io/bbolt v1.5.0 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
