#!/usr/bin/env escript
%%! -noshell
%% Erlang equivalent of the hyperc ping-pong benchmark (docs/benchmarks.md).
%%
%%   escript bench/pingpong/pingpong.erl N [INFLIGHT...] [warmup=W]
%%
%% A gen_server ponger answers every call with the 8-byte binary it was sent.
%% A pinger process sends W unmeasured round trips (default N div 10 + 1000),
%% then N measured ones, keeping INFLIGHT outstanding (default: 1 and 64):
%%   inflight 1:  gen_server:call/3 in a loop;
%%   inflight >1: gen_server:send_request/2, and receive_response/2 on the
%%                oldest outstanding request (the ponger answers in order).
%% RTT is measured per call with erlang:monotonic_time/1.  One line of JSON
%% per INFLIGHT value, with the same fields as the hyperc pinger.
%% escript compiles the module (-mode(compile)), so this is compiled code.
-module(pingpong).
-mode(compile).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2]).

-define(TIMEOUT, 30000).
-define(BODY, <<"ping0000">>).

%% ponger
init([]) -> {ok, nostate}.
handle_call(Body, _From, S) -> {reply, Body, S}.
handle_cast(_, S) -> {noreply, S}.

main(Args) ->
    {N, Inflights, Warm} = parse(Args),
    {ok, Ponger} = gen_server:start_link(?MODULE, [], []),
    Self = self(),
    lists:foreach(
      fun(K) ->
              W = case Warm of default -> N div 10 + 1000; _ -> Warm end,
              Pinger = spawn_link(fun() -> Self ! {self(), bench(Ponger, N, K, W)} end),
              receive {Pinger, Line} -> io:format("~s~n", [Line]) end
      end, Inflights),
    halt(0).

parse(Args) ->
    {Warm, Rest} = lists:partition(fun(A) -> lists:prefix("warmup=", A) end, Args),
    W = case Warm of [] -> default; [S | _] -> list_to_integer(lists:nthtail(7, S)) end,
    case Rest of
        [NS] -> {list_to_integer(NS), [1, 64], W};
        [NS | Ks] -> {list_to_integer(NS), [list_to_integer(K) || K <- Ks], W};
        _ -> io:format(standard_error, "usage: pingpong.erl N [INFLIGHT...] [warmup=W]~n", []),
             halt(2)
    end.

now_ns() -> erlang:monotonic_time(nanosecond).

bench(Ponger, N, K, W) ->
    _ = phase(Ponger, W, K),
    T0 = now_ns(),
    Rtts = phase(Ponger, N, K),
    Secs = (now_ns() - T0) / 1.0e9,
    Sorted = lists:sort(Rtts),
    Ok = length(Sorted),
    Mean = case Ok of 0 -> 0.0; _ -> lists:sum(Sorted) / Ok / 1000 end,
    io_lib:format("{\"n\":~b,\"inflight\":~b,\"warmup\":~b,\"errors\":~b,"
                  "\"secs\":~.4f,\"msgs_per_s\":~b,\"p50_us\":~.2f,"
                  "\"p99_us\":~.2f,\"mean_us\":~.2f}",
                  [N, K, W, N - Ok, Secs, round(Ok / Secs),
                   pct(Sorted, Ok, 50), pct(Sorted, Ok, 99), Mean]).

%% Nearest-rank percentile of a sorted list, in microseconds.
pct(_, 0, _) -> 0.0;
pct(Sorted, Len, P) -> lists:nth(max(1, (Len * P + 99) div 100), Sorted) / 1000.

%% Total round trips with K outstanding; returns the RTTs in ns.
phase(_, 0, _) -> [];
phase(Ponger, Total, 1) -> call_loop(Ponger, Total, []);
phase(Ponger, Total, K) ->
    First = min(K, Total),
    Q = queue:from_list([send(Ponger) || _ <- lists:seq(1, First)]),
    async_loop(Ponger, Total - First, Q, []).

call_loop(_, 0, Acc) -> Acc;
call_loop(Ponger, Left, Acc) ->
    T0 = now_ns(),
    ?BODY = gen_server:call(Ponger, ?BODY, ?TIMEOUT),
    call_loop(Ponger, Left - 1, [now_ns() - T0 | Acc]).

send(Ponger) -> {now_ns(), gen_server:send_request(Ponger, ?BODY)}.

async_loop(Ponger, Left, Q, Acc) ->
    case queue:out(Q) of
        {empty, _} -> Acc;
        {{value, {T0, Req}}, Q1} ->
            {reply, ?BODY} = gen_server:receive_response(Req, ?TIMEOUT),
            Rtt = now_ns() - T0,
            Q2 = case Left of 0 -> Q1; _ -> queue:in(send(Ponger), Q1) end,
            async_loop(Ponger, max(Left - 1, 0), Q2, [Rtt | Acc])
    end.
