"""The bookstore test service for sekisho's transcoder tests, on grpcio.

Usage: python3 server.py --port P

Generates its Python stubs from bookstore.proto into a temporary directory at start,
serves on 127.0.0.1:P over h2c, and exits when stdin closes (so a crashed test binary
never leaves it behind).
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
import grpc_tools
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))


def generate_stubs():
    import google.api

    api_root = os.path.dirname(os.path.dirname(list(google.api.__path__)[0]))
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    out = tempfile.mkdtemp(prefix="sekisho-grpc-")
    rc = protoc.main(["protoc", f"-I{HERE}", f"-I{api_root}", f"-I{wkt}",
                      f"--python_out={out}", f"--grpc_python_out={out}", "bookstore.proto"])
    if rc != 0:
        sys.exit(f"server.py: protoc failed with {rc}")
    sys.path.insert(0, out)


generate_stubs()

import bookstore_pb2 as pb  # noqa: E402
import bookstore_pb2_grpc as pb_grpc  # noqa: E402
from google.api import httpbody_pb2  # noqa: E402
from google.protobuf import empty_pb2, timestamp_pb2  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402


def book(shelf, book_id, genre=pb.FICTION):
    return pb.Book(id=book_id, title=f"Book {book_id} on shelf {shelf}", author="Ada",
                   genre=genre, published=timestamp_pb2.Timestamp(seconds=1700000000),
                   tags=["a", "b"])


class Bookstore(pb_grpc.BookstoreServicer):
    def GetShelf(self, request, context):
        return pb.Shelf(id=request.shelf, theme=f"theme {request.shelf}")

    def GetBook(self, request, context):
        return book(request.shelf, request.book)

    def GetBookTitle(self, request, context):
        return book(request.shelf, request.book)

    def CreateBook(self, request, context):
        b = pb.Book()
        b.CopyFrom(request.book)
        b.author = f"{b.author}|shelf={request.shelf}|rid={request.request_id}"
        return b

    def UpdateBook(self, request, context):
        b = pb.Book()
        b.CopyFrom(request.book)
        b.author = f"mask={','.join(request.update_mask.paths)}|shelf={request.shelf}"
        return b

    def PublishBook(self, request, context):
        return pb.Book(title=request.name, author=request.note, genre=request.genre)

    def DeleteBook(self, request, context):
        info = error_details_pb2.ErrorInfo(reason="BOOK_MISSING", domain="bookstore.example",
                                           metadata={"book": str(request.book)})
        st = status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0],
                               message=f"book {request.book} not found")
        st.details.add().Pack(info)
        context.set_trailing_metadata((("grpc-status-details-bin", st.SerializeToString()),))
        context.set_code(grpc.StatusCode.NOT_FOUND)
        context.set_details(f"book {request.book} not found")
        return empty_pb2.Empty()

    def ListBooks(self, request, context):
        for i in range(request.count):
            b = book(request.shelf, i + 1, request.genre or pb.FICTION)
            del b.tags[:]
            b.tags.extend(request.tags)
            yield b
        if request.delay_ms:
            time.sleep(request.delay_ms / 1000)
        if request.fail_code:
            context.abort(code_of(request.fail_code), f"stopped after {request.count}")

    def ImportBooks(self, request_iterator, context):
        s = pb.ImportSummary()
        for b in request_iterator:
            s.count += 1
            s.titles.append(b.title)
            s.shelf += b.id
        return s

    def Echo(self, request, context):
        md = dict(context.invocation_metadata())
        if "x-user-id" in md:
            context.send_initial_metadata((("x-echo-user", md["x-user-id"]),))
            context.set_trailing_metadata((("x-echo-trailer", "done"),))
        return request

    def Ping(self, request, context):
        return request

    def Fail(self, request, context):
        if request.code == 0:
            return empty_pb2.Empty()
        context.abort(code_of(request.code), f"failed with {request.code}")

    def Download(self, request, context):
        return httpbody_pb2.HttpBody(content_type="text/html; charset=utf-8",
                                     data=f"<h1>{request.name}</h1>".encode())

    def Upload(self, request, context):
        return pb.UploadReply(name=request.name, content_type=request.file.content_type,
                              size=len(request.file.data),
                              text=request.file.data.decode("utf-8", "replace"))


def code_of(n):
    for c in grpc.StatusCode:
        if c.value[0] == n:
            return c
    return grpc.StatusCode.UNKNOWN


def exit_when_stdin_closes():
    try:
        while sys.stdin.buffer.read(1024):
            pass
    finally:
        os._exit(0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_BookstoreServicer_to_server(Bookstore(), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"serving on 127.0.0.1:{args.port}", flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
