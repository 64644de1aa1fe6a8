# N sequential keep-alive requests on one connection: GET PREFIX<i>, or PREFIX itself with --same.
import socket, sys
port, prefix, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
same = len(sys.argv) > 4 and sys.argv[4] == "--same"
s = socket.create_connection(("127.0.0.1", port))
buf = b""
for i in range(n):
    path = prefix if same else f"{prefix}{i}"
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: allocs\r\nAccept: */*\r\n\r\n".encode())
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1").lower()
            length = int(head.split("content-length:")[1].split("\r\n")[0]) if "content-length:" in head else 0
            if len(buf) >= end + 4 + length:
                buf = buf[end + 4 + length:]
                break
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        buf += chunk
