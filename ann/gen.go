package ann

//go:generate go run -C ../_gen ./fastscan -out ../ann/fastscan_amd64.s -stubs ../ann/fastscan_stub_amd64.go -pkg ann
