//! A TCP proxy on loopback that holds each request for a fixed delay before
//! passing it on: one delay per request/response turn of a connection, so
//! a handler's latency grows by exactly that delay per sequential call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct DelayProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DelayProxy {
    pub async fn start(target: SocketAddr, delay: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = relay(client, server, delay).await;
                    }
                });
            }
        });
        Ok(Self { addr, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn relay(client: TcpStream, server: TcpStream, delay: Duration) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Set while the connection waits for its next request.
    let awaiting_request = Arc::new(AtomicBool::new(true));
    let upstream_flag = awaiting_request.clone();
    let upstream = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = client_read.read(&mut buffer).await?;
            if n == 0 {
                return server_write.shutdown().await;
            }
            if upstream_flag.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(delay).await;
            }
            server_write.write_all(&buffer[..n]).await?;
        }
    };
    let downstream = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = server_read.read(&mut buffer).await?;
            if n == 0 {
                return client_write.shutdown().await;
            }
            awaiting_request.store(true, Ordering::SeqCst);
            client_write.write_all(&buffer[..n]).await?;
        }
    };
    let _: (std::io::Result<()>, std::io::Result<()>) = tokio::join!(upstream, downstream);
    Ok(())
}
