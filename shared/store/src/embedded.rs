// filled by the embedded-store work
