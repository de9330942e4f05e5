# Shared by bench-vs-chrony.sh and soak.sh (sourced, not run).

# taken PORT: whether something listens on PORT (TCP or UDP).
taken() { ss -Hlnut | awk '{print $5}' | grep -q ":$1\$"; }

# make_pki DIR: a throwaway CA (DIR/ca.pem) and a P-256 server certificate
# for 127.0.0.1 / localhost (DIR/server.pem, DIR/server.key), valid 2 days.
make_pki() {
    local dir=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 -subj /CN=bench-ca \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$dir/server.key" -out "$dir/server.csr" -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
        >"$dir/ext.cnf"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -out "$dir/server.pem" -days 2 -extfile "$dir/ext.cnf" 2>/dev/null
    chmod 600 "$dir/server.key" "$dir/ca.key"
}

# ours_config FILE NTP_PORT KE_PORT DIR [SERVER_LINE ...]: an ntp-server
# configuration on 127.0.0.1 with NTS-KE (certificates from make_pki in DIR,
# keys under DIR/ours), local stratum 1, warnings only; extra lines go into
# its [[server]] table.
ours_config() {
    local file=$1 ntp=$2 ke=$3 dir=$4 line
    shift 4
    mkdir -p "$dir/ours"
    {
        echo '[[server]]'
        echo "listen = \"127.0.0.1:$ntp\""
        for line in "$@"; do echo "$line"; done
        echo
        echo '[[nts-ke-server]]'
        echo "listen = \"127.0.0.1:$ke\""
        echo "certificate-chain-path = \"$dir/server.pem\""
        echo "private-key-path = \"$dir/server.key\""
        echo "ntp-port = $ntp"
        echo
        echo '[keyset]'
        echo "key-storage-path = \"$dir/ours/nts-keys\""
        echo
        echo '[synchronization]'
        echo 'local-stratum = 1'
        echo
        echo '[observability]'
        echo 'log-level = "warn"'
    } >"$file"
}
