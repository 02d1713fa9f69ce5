"""What the interceptors share: a method handler's behaviour, and how to build one of its shape."""

from __future__ import annotations

import grpc


def behaviour_of(handler: grpc.RpcMethodHandler):
    """(the handler's behaviour, the constructor of a handler of the same shape)."""
    if handler.unary_unary:
        return handler.unary_unary, grpc.unary_unary_rpc_method_handler
    if handler.unary_stream:
        return handler.unary_stream, grpc.unary_stream_rpc_method_handler
    if handler.stream_unary:
        return handler.stream_unary, grpc.stream_unary_rpc_method_handler
    return handler.stream_stream, grpc.stream_stream_rpc_method_handler
