//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket, graphql-transport-ws (and the
//! older graphql-ws) through async-graphql's protocol support. The caller authenticates in
//! `connection_init` (`{"payload": {"authorization": "Bearer KEY"}}`) or, for clients that
//! can set headers on the upgrade, with the usual `Authorization` header.

use std::str::FromStr;
use std::sync::Arc;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};

use super::AppState;
use crate::access::{Caller, caller_for};
use crate::graphql::RequestState;

/// The largest client message taken: a subscription document, not an upload.
const MAX_MESSAGE: usize = 256 * 1024;

pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| {
            list.split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "ask for the graphql-transport-ws subprotocol (Sec-WebSocket-Protocol)",
        )
            .into_response();
    };
    // A key on the upgrade request itself (server-side clients) is checked like any other.
    let header_key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(state, socket, protocol, header_key))
}

async fn serve(
    state: AppState,
    socket: WebSocket,
    protocol: WebSocketProtocols,
    header_key: Option<String>,
) {
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|m| futures_util::future::ready(m.is_ok()))
        .filter_map(|m| {
            futures_util::future::ready(match m {
                Ok(Message::Text(t)) => Some(t.as_str().as_bytes().to_vec()),
                Ok(Message::Binary(b)) => Some(b.to_vec()),
                _ => None,
            })
        });
    let store = state.services.store.clone();
    // async-graphql closes a refused `connection_init` with a generic code; the protocol
    // asks for 4403 Forbidden, which clients know to stop retrying on.
    let refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refused_in_init = refused.clone();
    let mut output = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .on_connection_init(move |payload| async move {
            let refused = refused_in_init;
            let from_payload = payload
                .get("authorization")
                .or_else(|| payload.get("Authorization"))
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            let authorization = from_payload.or(header_key);
            let caller: Caller =
                caller_for(&store, authorization.as_deref())
                    .await
                    .map_err(|e| {
                        refused.store(true, std::sync::atomic::Ordering::Relaxed);
                        async_graphql::Error::new(e.to_string())
                    })?;
            let mut data = Data::default();
            data.insert(caller);
            data.insert(Arc::new(RequestState::default()));
            Ok(data)
        });
    while let Some(message) = output.next().await {
        let sent = match message {
            WsMessage::Text(text) => sink.send(Message::Text(text.into())).await,
            WsMessage::Close(code, reason) => {
                let code = if refused.load(std::sync::atomic::Ordering::Relaxed) {
                    4403
                } else {
                    code
                };
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}
