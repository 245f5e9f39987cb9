module hellok8s

go 1.22
