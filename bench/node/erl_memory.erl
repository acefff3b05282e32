#!/usr/bin/env escript
%%! -noshell
%% The Erlang peer of bench/node/run's memory figures (docs/benchmarks.md):
%%
%%   escript bench/node/erl_memory.erl idle|wait [N]
%%
%% idle: the VM's RSS with N idle gen_servers (each waiting for a call, as an
%%       idle hyperprocess waits for a request) minus its RSS before;
%% wait: the VM's RSS while N processes are asleep in `receive after` (a
%%       timer each, as a hyperc task asleep on timer:distro:sys) minus its
%%       RSS before.
%% One VM per measurement (freed memory stays with the VM's allocators).
%% Prints one line of JSON: mode, n, before_kib, during_kib, and
%% processes_bytes (the erlang:memory(processes) delta).
-module(erl_memory).
-mode(compile).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2]).

init([]) -> {ok, 0}.
handle_call(V, _From, S) -> {reply, V, S}.
handle_cast(_, S) -> {noreply, S}.

rss_kib() ->
    {ok, B} = file:read_file("/proc/" ++ os:getpid() ++ "/status"),
    [Line] = [L || L <- binary:split(B, <<"\n">>, [global]),
                   binary:match(L, <<"VmRSS:">>) =/= nomatch],
    [_, V | _] = binary:split(Line, [<<" ">>, <<"\t">>], [global, trim_all]),
    binary_to_integer(V).

settle() ->
    erlang:garbage_collect(),
    timer:sleep(1000).

main(Args) ->
    {Mode, N} = case Args of
                    [M] -> {M, 10000};
                    [M, A] -> {M, list_to_integer(A)}
                end,
    settle(),
    Before = rss_kib(),
    PBefore = erlang:memory(processes),
    Ps = case Mode of
             "idle" ->
                 [begin {ok, P} = gen_server:start(?MODULE, [], []), P end
                  || _ <- lists:seq(1, N)];
             "wait" ->
                 [spawn(fun() -> receive after 4000 -> ok end end)
                  || _ <- lists:seq(1, N)]
         end,
    timer:sleep(1500),
    During = rss_kib(),
    PDuring = erlang:memory(processes),
    Alive = length([P || P <- Ps, is_process_alive(P)]),
    io:format("{\"mode\":\"~s\",\"n\":~b,\"alive\":~b,\"before_kib\":~b,"
              "\"during_kib\":~b,\"processes_bytes\":~b}~n",
              [Mode, N, Alive, Before, During, PDuring - PBefore]),
    halt(0).
