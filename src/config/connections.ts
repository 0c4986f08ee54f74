/**
 * For connections that may idle for hours (the kept ones, LISTEN): TCP keepalives
 * after 30 s of quiet stop a NAT or a firewall from dropping them unnoticed, which
 * would leave the next request, or the live stream, on a dead socket.
 */
export const tcpKeepAlive = { keepAlive: true, keepAliveInitialDelayMillis: 30_000 } as const;
